//! Finds the line and column of a field path in a suite's YAML, so errors found after merging
//! and sweep expansion (when serde no longer knows positions) still point into the suite file.

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// Parses `a.b[2].c` into segments.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(n) = stripped[..close].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &stripped[close + 1..];
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

/// Renders segments back as `a.b[2].c`.
pub fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Line and column (1-based) of a node or key.
type Pos = (usize, usize);

/// One parsed node: where it starts, and its children. An alias shares the anchored node, so a
/// path through an alias ends where the value is written.
enum Node {
    Scalar(Pos),
    Seq(Pos, Vec<usize>),
    Map(Pos, Vec<(String, Pos, usize)>),
}

fn start(node: &Node) -> Pos {
    match node {
        Node::Scalar(at) | Node::Seq(at, _) | Node::Map(at, _) => *at,
    }
}

/// The document's nodes, the root first; None when the text is not YAML or has a key that is
/// not a plain value (the suite parser refuses those with their own position).
fn parse_tree(text: &str) -> Option<Vec<Node>> {
    use serde_saphyr::granit_parser::{Event, Parser};
    let mut nodes: Vec<Node> = Vec::new();
    let mut anchors = std::collections::HashMap::new();
    // Open collections; for a mapping, the key still waiting for its value.
    let mut open: Vec<(usize, Option<(String, Pos)>)> = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.ok()?;
        let at = (span.start.line(), span.start.col() + 1);
        let key_position =
            matches!(open.last(), Some((m, None)) if matches!(nodes[*m], Node::Map(..)));
        let (id, anchor, opens) = match ev {
            Event::Scalar(k, ..) if key_position => {
                open.last_mut()?.1 = Some((k.into_owned(), at));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
                continue;
            }
            _ if key_position => return None,
            Event::Scalar(_, _, anchor, _) => (push(&mut nodes, Node::Scalar(at)), anchor, false),
            Event::SequenceStart(_, anchor, _) => {
                (push(&mut nodes, Node::Seq(at, vec![])), anchor, true)
            }
            Event::MappingStart(_, anchor, _) => {
                (push(&mut nodes, Node::Map(at, vec![])), anchor, true)
            }
            Event::Alias(anchor) => (*anchors.get(&anchor)?, 0, false),
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, id);
        }
        if let Some((parent, key)) = open.last_mut() {
            match &mut nodes[*parent] {
                Node::Seq(_, items) => items.push(id),
                Node::Map(_, entries) => {
                    let (k, key_at) = key.take()?;
                    entries.push((k, key_at, id));
                }
                Node::Scalar(_) => return None,
            }
        }
        if opens {
            open.push((id, None));
        }
    }
    (!nodes.is_empty()).then_some(nodes)
}

fn push(nodes: &mut Vec<Node>, node: Node) -> usize {
    nodes.push(node);
    nodes.len() - 1
}

/// Line (1-based) and column (1-based) of the deepest prefix of `path` found in `text`: a key's
/// own position, or a sequence item's first character. Follows aliases to the anchored text.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let nodes = parse_tree(text)?;
    let (mut cur, mut found) = (0, None);
    for seg in path {
        let next = match (&nodes[cur], seg) {
            (Node::Map(_, entries), Seg::Key(k)) => {
                entries.iter().find(|e| &e.0 == k).map(|e| (e.1, e.2))
            }
            (Node::Seq(_, items), Seg::Index(i)) => items.get(*i).map(|&n| (start(&nodes[n]), n)),
            _ => None,
        };
        let Some((at, id)) = next else { break };
        found = Some(at);
        cur = id;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "id: t\ndefaults:\n  optimizer:\n    lr: 0.1\nexperiments:\n  - id: a\n    overrides:\n      regularizer: {name: manifold_mixup, alpha: -1}\n  - id: b\n    overrides:\n      model:\n        arch: mlp\n";

    #[test]
    fn finds_nested_keys_list_items_and_flow_maps() {
        assert_eq!(
            locate(Y, &parse_path("defaults.optimizer.lr")),
            Some((4, 5))
        );
        assert_eq!(
            locate(Y, &parse_path("experiments[1].overrides.model.arch")),
            Some((12, 9))
        );
        assert_eq!(
            locate(Y, &parse_path("experiments[0].overrides.regularizer.alpha")),
            Some((8, 43))
        );
        assert_eq!(locate(Y, &parse_path("experiments[1].id")), Some((9, 5)));
        let flow = "a:\n  b: {c: {d: [1, {e: 2}, 3]}, f: 1}\n";
        assert_eq!(locate(flow, &parse_path("a.b.c.d[1].e")), Some((2, 19)));
        assert_eq!(locate(flow, &parse_path("a.b.c.d[2]")), Some((2, 26)));
        assert_eq!(locate(flow, &parse_path("a.b.f")), Some((2, 31)));
        // Block items are found at their first key, the dash's line.
        assert_eq!(locate(Y, &parse_path("experiments[1]")), Some((9, 5)));
        // A missing key stops at the deepest prefix found.
        assert_eq!(locate(flow, &parse_path("a.zzz")), Some((1, 1)));
        assert_eq!(
            render(&parse_path("experiments[1].overrides.model")),
            "experiments[1].overrides.model"
        );
    }

    #[test]
    fn paths_through_an_alias_end_where_the_value_is_written() {
        let y = "base: &b\n  optimizer: {lr: 0.1}\n  epochs: 3\nrows:\n  - overrides: *b\n  - overrides: {epochs: 4}\n";
        // The key itself is at its use; what lies inside is where the anchor wrote it.
        assert_eq!(locate(y, &parse_path("rows[0].overrides")), Some((5, 5)));
        assert_eq!(
            locate(y, &parse_path("rows[0].overrides.optimizer.lr")),
            Some((2, 15))
        );
        assert_eq!(
            locate(y, &parse_path("rows[0].overrides.epochs")),
            Some((3, 3))
        );
        assert_eq!(
            locate(y, &parse_path("rows[1].overrides.epochs")),
            Some((6, 17))
        );
        // Keys are matched whole, not by prefix or inside values.
        let tricky = "a:\n  lrx: 1\n  note: 'lr: 2'\n  lr: 3\n";
        assert_eq!(locate(tricky, &parse_path("a.lr")), Some((4, 3)));
        assert_eq!(locate("a: [1, 2\n", &parse_path("a")), None, "not YAML");
    }
}
