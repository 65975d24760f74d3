//! Finds the line and column of a field path in block-style YAML text, so errors found after
//! merging (when serde no longer knows positions) still point into the suite file.

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

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// Line (1-based) and column (1-based) of the deepest prefix of `path` found in `text`.
pub fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    // Replace "- " list markers by spaces so keys of list items line up as mapping keys.
    let mut view: Vec<String> = text.lines().map(str::to_string).collect();
    let (mut lo, mut hi) = (0usize, view.len());
    let mut parent: isize = -1;
    let mut found: Option<(usize, usize)> = None;
    for (depth, seg) in path.iter().enumerate() {
        // Nothing below the found line: the rest is a flow collection on that line.
        if let Some((l, c)) = found
            && lo >= l
            && (lo >= hi || !(lo..hi).any(|i| is_content(&view[i])))
        {
            let line = text.lines().nth(l - 1).unwrap_or_default();
            return Some((l, locate_inline(line, c - 1, &path[depth..]) + 1));
        }
        match seg {
            Seg::Key(k) => {
                let pat = format!("{k}:");
                let Some(child) = (lo..hi)
                    .filter(|&i| is_content(&view[i]))
                    .map(|i| indent_of(&view[i]))
                    .filter(|&c| c as isize > parent)
                    .min()
                else {
                    return found;
                };
                let Some(hit) = (lo..hi).find(|&i| {
                    indent_of(&view[i]) == child && view[i].trim_start().starts_with(&pat)
                }) else {
                    return found;
                };
                found = Some((hit + 1, child + 1));
                let end = (hit + 1..hi)
                    .find(|&i| is_content(&view[i]) && indent_of(&view[i]) <= child)
                    .unwrap_or(hi);
                lo = hit + 1;
                hi = end;
                parent = child as isize;
            }
            Seg::Index(n) => {
                let items: Vec<usize> = (lo..hi)
                    .filter(|&i| view[i].trim_start().starts_with("- ") || view[i].trim() == "-")
                    .collect();
                let Some(dash) = items.iter().map(|&i| indent_of(&view[i])).min() else {
                    return found;
                };
                let items: Vec<usize> = items
                    .into_iter()
                    .filter(|&i| indent_of(&view[i]) == dash)
                    .collect();
                let Some(&hit) = items.get(*n) else {
                    return found;
                };
                found = Some((hit + 1, dash + 1));
                let end = (hit + 1..hi)
                    .find(|&i| is_content(&view[i]) && indent_of(&view[i]) <= dash)
                    .unwrap_or(hi);
                // The item's first key shares the dash line: blank the marker out.
                let mut l = view[hit].clone();
                l.replace_range(dash..dash + 1, " ");
                view[hit] = l;
                lo = hit;
                hi = end;
                parent = dash as isize;
            }
        }
    }
    found
}

/// Byte column (0-based) of `path` inside the flow collections of `line`, starting from the
/// key or item at `from`; stops at the deepest segment it finds.
fn locate_inline(line: &str, from: usize, path: &[Seg]) -> usize {
    let b = line.as_bytes();
    let mut at = from;
    for seg in path {
        match seg {
            Seg::Key(k) => {
                let pat = format!("{k}:");
                // Only a key that starts a mapping entry (after `{`, `,` or a space).
                let hit = line[at..]
                    .match_indices(&pat)
                    .map(|(i, _)| at + i)
                    .find(|&i| i == 0 || matches!(b[i - 1], b'{' | b',' | b' ' | b'\t'));
                match hit {
                    Some(i) => at = i,
                    None => return at,
                }
            }
            Seg::Index(n) => {
                let Some(open) = line[at..].find('[').map(|i| at + i) else {
                    return at;
                };
                // Walk to the n-th top-level item of the sequence.
                let (mut depth, mut item, mut i, mut start) = (0usize, 0usize, open + 1, open + 1);
                while i < b.len() && item < *n {
                    match b[i] {
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' if depth == 0 => return at,
                        b']' | b'}' => depth -= 1,
                        b',' if depth == 0 => {
                            item += 1;
                            start = i + 1;
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if item < *n {
                    return at;
                }
                at = start + line[start..].len() - line[start..].trim_start().len();
            }
        }
    }
    at
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
        // A missing key stops at the deepest prefix found.
        assert_eq!(locate(flow, &parse_path("a.zzz")), Some((1, 1)));
        assert_eq!(
            render(&parse_path("experiments[1].overrides.model")),
            "experiments[1].overrides.model"
        );
    }
}
