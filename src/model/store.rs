//! Parameter storage: a candle `VarBuilder` backend that draws initial values from seeded
//! ChaCha8 streams (one per parameter name), plus non-trainable buffers (BatchNorm statistics).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder, var_builder::SimpleBackend};
use rand::distr::{Distribution, Uniform};
use rand_distr::Normal;

use crate::rng;

type VarMapInner = Arc<Mutex<BTreeMap<String, Var>>>;

/// A `SimpleBackend` creating each variable once, with values from `rng::stream(seed, "init/<name>")`.
///
/// Seeding by name makes the values independent of creation order.
#[derive(Clone)]
pub struct SeededBackend {
    vars: VarMapInner,
    seed: u64,
    detached: bool,
}

fn draw(
    seed: u64,
    name: &str,
    shape: &Shape,
    init: Init,
    dev: &Device,
) -> candle_core::Result<Tensor> {
    let n = shape.elem_count();
    let mut r = rng::stream(seed, &format!("init/{name}"), 0);
    let values: Vec<f32> = match init {
        Init::Const(v) => vec![v as f32; n],
        Init::Uniform { lo, up } => {
            let d = Uniform::new(lo as f32, up as f32)
                .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
            (0..n).map(|_| d.sample(&mut r)).collect()
        }
        Init::Randn { mean, stdev } => {
            let d = Normal::new(mean as f32, stdev as f32)
                .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
            (0..n).map(|_| d.sample(&mut r)).collect()
        }
        Init::Kaiming { .. } => {
            return Err(candle_core::Error::Msg(format!(
                "{name}: Kaiming init hint is not used by mixbench layers; pass explicit bounds"
            )));
        }
    };
    Tensor::from_vec(values, shape.clone(), dev)
}

impl SimpleBackend for SeededBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self.vars.lock().expect("parameter store poisoned");
        if let Some(v) = vars.get(name) {
            if v.shape() != &s {
                return Err(candle_core::Error::Msg(format!(
                    "parameter {name} requested with shape {s:?} but exists with {:?}",
                    v.shape()
                )));
            }
            // A detached view shares the storage (so later `set`s show) but takes no gradient.
            return Ok(if self.detached {
                v.as_tensor().detach()
            } else {
                v.as_tensor().clone()
            });
        }
        if self.detached {
            return Err(candle_core::Error::Msg(format!(
                "detached view asks for parameter {name}, which the model does not have"
            )));
        }
        let t = draw(self.seed, name, &s, h, dev)?.to_dtype(dtype)?;
        let v = Var::from_tensor(&t)?;
        let out = v.as_tensor().clone();
        vars.insert(name.to_string(), v);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let vars = self.vars.lock().expect("parameter store poisoned");
        vars.get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| candle_core::Error::Msg(format!("no parameter named {name}")))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars
            .lock()
            .expect("parameter store poisoned")
            .contains_key(name)
    }
}

/// Trainable parameters and buffers of one model, by their PyTorch state_dict names.
#[derive(Clone)]
pub struct ParamStore {
    params: VarMapInner,
    buffers: VarMapInner,
    seed: u64,
    device: Device,
    dtype: DType,
    detached: bool,
    bn_init: BnInit,
    noise: NoiseSource,
}

/// The generator that training-time noise layers (dropout) draw from, shared by every layer of
/// one model; the trainer reseeds it from (seed, epoch) so a resumed run draws the same masks.
pub type NoiseSource = Arc<Mutex<Option<rand_chacha::ChaCha8Rng>>>;

impl ParamStore {
    /// An empty f32 store whose parameters will be drawn from `seed`.
    pub fn new(seed: u64, device: Device) -> Self {
        Self::with_dtype(seed, device, DType::F32)
    }

    /// An empty store of `dtype` (values are drawn in f32 and converted, so an f64 store holds
    /// exactly the f32 model's values).
    pub fn with_dtype(seed: u64, device: Device, dtype: DType) -> Self {
        ParamStore {
            params: Arc::default(),
            buffers: Arc::default(),
            seed,
            device,
            dtype,
            detached: false,
            bn_init: BnInit::Current,
            noise: Arc::default(),
        }
    }

    /// Points the model's noise layers at `rng` (None: training-mode noise is an error).
    pub fn set_noise(&self, rng: Option<rand_chacha::ChaCha8Rng>) {
        *self.noise.lock().expect("noise source poisoned") = rng;
    }

    /// The same store with BatchNorm weights initialised by `init` (before building).
    pub fn with_bn_init(self, init: BnInit) -> Self {
        ParamStore {
            bn_init: init,
            ..self
        }
    }

    /// The same parameters and buffers, handed out as tensors that take no gradient: a network
    /// built from it differentiates only with respect to its input (FGSM), at the cost of one
    /// backward pass instead of one plus every weight gradient.
    pub fn detached_view(&self) -> ParamStore {
        ParamStore {
            detached: true,
            ..self.clone()
        }
    }

    /// A builder at the root path.
    pub fn builder(&self) -> ParamBuilder {
        let backend = SeededBackend {
            vars: self.params.clone(),
            seed: self.seed,
            detached: self.detached,
        };
        ParamBuilder {
            vb: VarBuilder::from_backend(Box::new(backend), self.dtype, self.device.clone()),
            buffers: self.buffers.clone(),
            bn_init: self.bn_init,
            noise: self.noise.clone(),
        }
    }

    /// Trainable parameters sorted by name.
    pub fn params(&self) -> Vec<(String, Var)> {
        let p = self.params.lock().expect("parameter store poisoned");
        p.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Buffers (BatchNorm running statistics) sorted by name.
    pub fn buffers(&self) -> Vec<(String, Var)> {
        let b = self.buffers.lock().expect("parameter store poisoned");
        b.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Number of trainable scalars.
    pub fn num_trainable(&self) -> usize {
        self.params().iter().map(|(_, v)| v.elem_count()).sum()
    }

    /// Device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Element type of the parameters (f32, or f64 for exact reference checks).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Overwrites parameters and buffers from named tensors (e.g. a checkpoint or a fixture).
    ///
    /// Every parameter and buffer must be present with the right shape; extra names are an error.
    pub fn load(&self, tensors: &BTreeMap<String, Tensor>) -> crate::Result<()> {
        let mut seen = 0usize;
        for (name, var) in self.params().into_iter().chain(self.buffers()) {
            let t = tensors.get(&name).ok_or_else(|| {
                crate::Error::Other(format!("checkpoint has no tensor for `{name}`"))
            })?;
            if t.shape() != var.shape() {
                return Err(crate::Error::Other(format!(
                    "tensor `{name}` has shape {:?}, the model expects {:?}",
                    t.shape(),
                    var.shape()
                )));
            }
            var.set(&t.to_dtype(self.dtype)?.to_device(&self.device)?)?;
            seen += 1;
        }
        if seen != tensors.len() {
            let known: std::collections::BTreeSet<String> = self
                .params()
                .into_iter()
                .chain(self.buffers())
                .map(|(n, _)| n)
                .collect();
            let extra: Vec<&String> = tensors.keys().filter(|k| !known.contains(*k)).collect();
            return Err(crate::Error::Other(format!(
                "tensors not in the model: {extra:?}"
            )));
        }
        Ok(())
    }
}

/// Hands out parameters (through candle's `VarBuilder`) and buffers under a name prefix.
#[derive(Clone)]
pub struct ParamBuilder {
    vb: VarBuilder<'static>,
    buffers: VarMapInner,
    bn_init: BnInit,
    noise: NoiseSource,
}

/// How BatchNorm weights (γ) start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnInit {
    /// γ = 1 (PyTorch ≥ 1.2).
    #[default]
    Current,
    /// γ ~ U(0, 1): PyTorch 1.0, which the reference code pins (`reset_parameters` drew
    /// `uniform_()` until 1.2).
    Torch10,
}

impl BnInit {
    /// Parses the `bn_init` model parameter.
    pub fn parse(v: &serde_json::Value) -> crate::Result<Self> {
        match v.as_str() {
            Some("current") => Ok(BnInit::Current),
            Some("torch1.0") => Ok(BnInit::Torch10),
            _ => Err(crate::Error::param(
                "bn_init",
                format!(
                    "model: `bn_init` must be \"current\" (gamma = 1) or \"torch1.0\" (gamma ~ U(0,1), the reference's pinned PyTorch), got {v}"
                ),
            )),
        }
    }
}

impl ParamBuilder {
    /// Initialiser of BatchNorm weights under this builder's `bn_init`.
    pub fn bn_weight_init(&self) -> Init {
        match self.bn_init {
            BnInit::Current => Init::Const(1.0),
            BnInit::Torch10 => Init::Uniform { lo: 0.0, up: 1.0 },
        }
    }

    /// The model's shared noise generator (for dropout).
    pub fn noise(&self) -> NoiseSource {
        self.noise.clone()
    }

    /// A builder one level down (`prefix.name`).
    pub fn pp(&self, name: impl ToString) -> Self {
        ParamBuilder {
            vb: self.vb.pp(name),
            buffers: self.buffers.clone(),
            bn_init: self.bn_init,
            noise: self.noise.clone(),
        }
    }

    /// A trainable parameter `name` of `shape` initialised by `init`.
    pub fn param(
        &self,
        shape: impl Into<Shape>,
        name: &str,
        init: Init,
    ) -> candle_core::Result<Tensor> {
        self.vb.get_with_hints(shape, name, init)
    }

    /// A non-trainable buffer `name` of `shape` filled with `value`.
    pub fn buffer(
        &self,
        shape: impl Into<Shape>,
        name: &str,
        value: f32,
    ) -> candle_core::Result<Var> {
        let full = if self.vb.prefix().is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.vb.prefix())
        };
        let shape: Shape = shape.into();
        if let Some(v) = self
            .buffers
            .lock()
            .expect("parameter store poisoned")
            .get(&full)
            && v.shape() == &shape
        {
            // Rebuilding on the same store (a detached view) shares the existing buffer.
            return Ok(v.clone());
        }
        let t = Tensor::full(value, shape, self.vb.device())?.to_dtype(self.vb.dtype())?;
        let v = Var::from_tensor(&t)?;
        self.buffers
            .lock()
            .expect("parameter store poisoned")
            .insert(full, v.clone());
        Ok(v)
    }
}
