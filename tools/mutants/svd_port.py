"""A line-by-line Python port of src/eval/singular_values.rs (same IEEE operations in the same
order), with switches for three mutants cargo-mutants left alive, to see what each changes:
neg_mut (1e-30 * total -> /), ge_mut (col[0] > 0 -> >=), ab_mut (alpha * beta -> + in the
convergence test). Run: python3 tools/mutants/svd_port.py (tests/MUTANTS.md quotes its output)."""
import math, random, sys
def dot(a,b):
    s=0.0
    for x,y in zip(a,b): s=s+x*y
    return s
def sv(rows,cols,data,neg_mut=False,ge_mut=False,ab_mut=False):
    m,n=max(rows,cols),min(rows,cols)
    a=[0.0]*(m*n)
    for i in range(rows):
        for j in range(cols):
            r,c=(i,j) if rows>=cols else (j,i)
            a[c*m+r]=data[i*cols+j]
    v=[0.0]*m
    for j in range(n):
        col=a[j*m+j:(j+1)*m]
        norm=math.sqrt(dot(col,col))
        if norm==0.0: continue
        alpha=-norm if (col[0]>=0.0 if ge_mut else col[0]>0.0) else norm
        L=m-j
        v[:L]=col; v[0]-=alpha
        vv=dot(v[:L],v[:L])
        if vv==0.0: continue
        for c in range(j+1,n):
            x=a[c*m+j:(c+1)*m]
            f=2.0*dot(v[:L],x)/vv
            x=[xi-f*vi for xi,vi in zip(x,v[:L])]
            a[c*m+j:(c+1)*m]=x
        a[j*m+j]=alpha
        for k in range(j*m+j+1,(j+1)*m): a[k]=0.0
    cols_=[a[j*m:j*m+n] for j in range(n)]
    total=sum(dot(c,c) for c in cols_)
    negl= (1e-30/total if total else math.inf) if neg_mut else 1e-30*total
    for sweep in range(100):
        rot=False
        for p in range(n):
            for q in range(p+1,n):
                cp,cq=cols_[p],cols_[q]
                al,be,ga=dot(cp,cp),dot(cq,cq),dot(cp,cq)
                if ga==0.0 or abs(ga)<=1e-15*math.sqrt((al+be) if ab_mut else al*be) or min(al,be)<=negl: continue
                rot=True
                zeta=(be-al)/(2.0*ga)
                t=math.copysign(1.0,zeta)/(abs(zeta)+math.sqrt(1.0+zeta*zeta))
                c=1.0/math.sqrt(1.0+t*t); s=c*t
                for k in range(n):
                    xp,yq=cp[k],cq[k]
                    cp[k]=c*xp-s*yq; cq[k]=s*xp+c*yq
        if not rot: return sorted([math.sqrt(dot(c,c)) for c in cols_],reverse=True)
    return None
random.seed(1)
found=0
for trial in range(3000):
    n_ex=random.randint(2,6); dim=random.randint(2,10); rank=random.randint(1,min(n_ex,dim)-1) if min(n_ex,dim)>1 else 1
    scale=10**random.uniform(-3,6)
    B=[[random.gauss(0,1) for _ in range(dim)] for _ in range(rank)]
    C=[[random.gauss(0,1) for _ in range(rank)] for _ in range(n_ex)]
    rows=[scale*sum(C[i][k]*B[k][j] for k in range(rank)) for i in range(n_ex) for j in range(dim)]
    o=sv(n_ex,dim,rows); mu=sv(n_ex,dim,rows,True)
    if (o is None)!=(mu is None) or (o and mu and o!=mu):
        found+=1
print('neg_mut: rank-deficient matrices whose spectrum changes bits:',found,'of 3000')
random.seed(2); worst=0; worst_noise=0
for trial in range(2000):
    n_ex=random.randint(2,6); dim=random.randint(2,10); rank=random.randint(1,max(1,min(n_ex,dim)-1))
    scale=10**random.uniform(-3,6)
    B=[[random.gauss(0,1) for _ in range(dim)] for _ in range(rank)]
    C=[[random.gauss(0,1) for _ in range(rank)] for _ in range(n_ex)]
    rows=[scale*sum(C[i][k]*B[k][j] for k in range(rank)) for i in range(n_ex) for j in range(dim)]
    o=sv(n_ex,dim,rows); mu=sv(n_ex,dim,rows,True)
    for k,(x,y) in enumerate(zip(o,mu)):
        r=abs(x-y)/o[0]
        if k<rank: worst=max(worst,r)
        else: worst_noise=max(worst_noise,r)
print('neg_mut: largest change of a signal value, of a noise value (relative to the top):',worst,worst_noise)
random.seed(3); worst=0; hits=0; n_tot=0
for trial in range(3000):
    n_ex=random.randint(2,8); dim=random.randint(2,10)
    scale=10**random.uniform(-3,6)
    rows=[max(0.0,scale*random.gauss(0,1)) if random.random()<0.8 else 0.0 for _ in range(n_ex*dim)]
    o=sv(n_ex,dim,rows); mu=sv(n_ex,dim,rows,ge_mut=True)
    if o is None or mu is None: print('nonconv', o is None, mu is None); continue
    n_tot+=1
    if o!=mu: hits+=1
    for x,y in zip(o,mu):
        if o[0]>0: worst=max(worst,abs(x-y)/o[0])
print('ge_mut: ReLU-like matrices whose spectrum changes bits:',hits,'of',n_tot,'; largest change relative to the top:',worst)

random.seed(9); fails=[]; d=0
for t in range(3000):
    n=random.randint(2,6); m=random.randint(2,8); sc=10**random.uniform(-4,6)
    rows=[sc*random.gauss(0,1) for _ in range(n*m)]
    o=sv(n,m,rows); mu=sv(n,m,rows,ab_mut=True)
    if o is None: print("orig fails"); continue
    if mu is None: fails.append((n,m,sc)); continue
    if o!=mu: d+=1
print('ab_mut: random matrices (scale 1e-4..1e6) that no longer converge:',len(fails),'of 3000; smallest scale among them:',min(f[2] for f in fails))
