//! The paper's printed values ("4.83 ± 0.066", "3.52", "NA"), kept verbatim and parsed.

use serde::{Deserialize, Serialize};

/// A printed table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperValue {
    /// Exactly as printed.
    pub raw: String,
    /// The number, if the cell has one.
    pub mean: Option<f64>,
    /// The ± part, if printed.
    pub std: Option<f64>,
}

/// Parses a printed cell; anything that is not `x` or `x ± s` keeps only `raw`.
pub fn parse(raw: &str) -> PaperValue {
    let mut parts = raw.split('±').map(str::trim);
    let mean = parts.next().and_then(|m| m.parse::<f64>().ok());
    let std = parts.next().and_then(|s| s.parse::<f64>().ok());
    PaperValue {
        raw: raw.to_string(),
        mean,
        std: if mean.is_some() { std } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_printed_cells() {
        assert_eq!(parse("4.83 ± 0.066").mean, Some(4.83));
        assert_eq!(parse("4.83 ± 0.066").std, Some(0.066));
        assert_eq!(parse("3.52").std, None);
        assert_eq!(parse("NA").mean, None);
        assert_eq!(parse("n/a").raw, "n/a");
    }
}
