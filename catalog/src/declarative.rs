//! The declarative TOML form of the catalog: parsing (unknown keys are errors naming the
//! line), locating problems in the source, and writing the export.

use crate::catalog::Catalog;
use crate::error::{Error, Result, codes};
use crate::roles::Principal;
use crate::service::{self, ChangeReport};
use crate::store::Store;
use crate::validate::Problem;

/// Parses a catalog file. Malformed TOML and unknown keys are refused with line and column.
pub fn parse(src: &str) -> Result<Catalog> {
    toml::from_str(src).map_err(|e| {
        let msg = e.to_string();
        let msg = msg.trim_start_matches("TOML parse error ").trim_end();
        Error::bad_request(codes::INVALID_TOML, format!("the catalog file is not valid: {msg}"))
    })
}

/// The 1-based line of the `index`-th `[[section]]` header of `src`.
pub fn section_line(src: &str, section: &str, index: usize) -> Option<usize> {
    let header = format!("[[{section}]]");
    src.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim();
            l == header || (l.starts_with(&header) && l[header.len()..].trim_start().starts_with('#'))
        })
        .nth(index)
        .map(|(n, _)| n + 1)
}

/// Serializes a catalog (secrets already removed) as TOML.
pub fn to_toml(c: &Catalog) -> Result<String> {
    let body = toml::to_string_pretty(c).map_err(|e| Error::Internal(format!("cannot write TOML: {e}")))?;
    Ok(format!(
        "# onecard catalog export. Secrets (HMAC channel keys, tokens, catalog keys) are not included;\n\
         # applying this file keeps the stored ones.\n\n{body}"
    ))
}

/// Parses and applies `src` as `who`.
pub async fn apply_str(store: &Store, who: &Principal, src: &str, dry_run: bool) -> Result<ChangeReport> {
    let desired = parse(src)?;
    let line_of = |p: &Problem| section_line(src, p.section, p.index);
    service::apply(store, who, desired, dry_run, &line_of).await
}

/// Exports the catalog as TOML.
pub async fn export_toml(store: &Store) -> Result<String> {
    to_toml(&service::export(store).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_the_line() {
        let src = "[[provinces]]\ncode = \"33\"\nname = \"Zhejiang\"\ncolour = \"blue\"\n";
        let err = parse(src).expect_err("unknown key");
        assert_eq!(err.code(), codes::INVALID_TOML);
        assert!(err.to_string().contains("line 4"), "{err}");
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn malformed_toml_names_the_line() {
        let err = parse("[[provinces]]\ncode = \"33\nname = 1\n").expect_err("malformed");
        assert_eq!(err.code(), codes::INVALID_TOML);
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn section_lines_are_found() {
        let src = "[[grants]]\na=1\n\n[[grants]] # second\nb=2\n";
        assert_eq!(section_line(src, "grants", 0), Some(1));
        assert_eq!(section_line(src, "grants", 1), Some(4));
        assert_eq!(section_line(src, "grants", 2), None);
    }
}
