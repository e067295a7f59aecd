//! `onecard plugin new NAME`: a new plugin crate from the template in `gateway/templates/plugin`
//! (manifest, schema, one action, native tests with the SDK's `Harness`) that builds and passes
//! its tests unchanged. The template is embedded in the binary, so a department needs nothing but
//! `onecard` and a Rust toolchain.
//!
//! Where the crate depends on `onecard-sdk` from:
//! - inside a onecard workspace (an enclosing `Cargo.toml` whose `[workspace.dependencies]` names
//!   `onecard-sdk`): the crate is a workspace member and inherits everything from the workspace;
//! - elsewhere: a crate of its own (`[workspace]`), depending on the SDK by path — `--sdk PATH`,
//!   else the SDK beside the sources this `onecard` was built from when they still exist — or,
//!   failing both, on the project's git repository at this release's tag.

use std::path::{Path, PathBuf};

use clap::Args;

/// The template files: (path in the new crate, template text).
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/plugin/Cargo.toml.tmpl")),
    ("plugin.toml", include_str!("../../templates/plugin/plugin.toml.tmpl")),
    ("README.md", include_str!("../../templates/plugin/README.md.tmpl")),
    (".gitignore", include_str!("../../templates/plugin/gitignore.tmpl")),
    ("schemas/greet.json", include_str!("../../templates/plugin/schemas/greet.json.tmpl")),
    ("src/lib.rs", include_str!("../../templates/plugin/src/lib.rs.tmpl")),
    ("src/tests.rs", include_str!("../../templates/plugin/src/tests.rs.tmpl")),
];

/// The SDK beside the sources this binary was built from (used when it still exists).
const SOURCE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk");

/// Package names a plugin may not take: Rust keywords, the standard crates and the crates the
/// template depends on.
const RESERVED: &[&str] = &[
    "std", "core", "alloc", "proc-macro", "test", "serde", "serde-json", "onecard-sdk", "wit-bindgen", "as", "break",
    "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let", "loop",
    "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's id and crate name: 2-40 characters of a-z, 0-9 and single hyphens, starting
    /// with a letter (e.g. `library-loans`).
    name: String,
    /// Where to create the crate (must not exist). Default: `./NAME`.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `onecard-sdk` crate to depend on by path (outside a onecard workspace).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// Why `plugin new` refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("PLUGIN_NAME_INVALID: {0}")]
    NameInvalid(String),
    #[error("PLUGIN_DIR_EXISTS: {} already exists; choose another --dir or remove it", .0.display())]
    DirExists(PathBuf),
    #[error("PLUGIN_SDK_NOT_FOUND: {} is not the onecard-sdk crate (no Cargo.toml naming onecard-sdk)", .0.display())]
    SdkNotFound(PathBuf),
    #[error("PLUGIN_NEW_FAILED: {0}")]
    Io(String),
}

impl NewError {
    /// The exit code: 2 for bad usage, 1 when writing failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            NewError::Io(_) => 1,
            _ => 2,
        }
    }
}

/// Checks a plugin name; the message says what a valid one looks like.
pub fn validate_name(name: &str) -> Result<(), NewError> {
    let shape = (2..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !shape {
        return Err(NewError::NameInvalid(format!(
            "{name:?} is not a plugin name: use 2-40 characters of a-z, 0-9 and single hyphens, starting with a letter (e.g. `library-loans`)"
        )));
    }
    if RESERVED.contains(&name) {
        return Err(NewError::NameInvalid(format!("{name:?} is reserved (a Rust keyword or a crate the plugin depends on); choose another name")));
    }
    Ok(())
}

/// How the new crate's `Cargo.toml` gets the SDK.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// A member of the onecard workspace at `root`; `listed` when its members already include it.
    Member { root: PathBuf, relative: String, listed: bool },
    /// A crate of its own depending on the SDK at this path.
    SdkPath(PathBuf),
    /// A crate of its own depending on the SDK from the project's repository at this tag.
    SdkGit { repository: String, tag: String },
}

/// The layout for a crate at `dir` (absolute).
pub fn layout(dir: &Path, sdk: Option<&Path>) -> Result<Layout, NewError> {
    if let Some((root, members)) = enclosing_onecard_workspace(dir) {
        let relative = dir.strip_prefix(&root).map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        let listed = members.iter().any(|m| member_matches(m, &relative));
        return Ok(Layout::Member { root, relative, listed });
    }
    if let Some(path) = sdk {
        let path = std::path::absolute(path).map_err(|e| NewError::Io(format!("{}: {e}", path.display())))?;
        if !is_sdk(&path) {
            return Err(NewError::SdkNotFound(path));
        }
        return Ok(Layout::SdkPath(std::fs::canonicalize(&path).unwrap_or(path)));
    }
    match std::fs::canonicalize(SOURCE_SDK) {
        Ok(path) if is_sdk(&path) => Ok(Layout::SdkPath(path)),
        _ => Ok(Layout::SdkGit { repository: env!("CARGO_PKG_REPOSITORY").into(), tag: format!("v{}", env!("CARGO_PKG_VERSION")) }),
    }
}

fn is_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| t.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) == Some("onecard-sdk"))
}

/// The nearest enclosing workspace root of `dir` whose dependencies name `onecard-sdk`, with its
/// `members` patterns.
fn enclosing_onecard_workspace(dir: &Path) -> Option<(PathBuf, Vec<String>)> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(text) = std::fs::read_to_string(ancestor.join("Cargo.toml")) else { continue };
        let Ok(table) = text.parse::<toml::Table>() else { continue };
        let Some(workspace) = table.get("workspace") else { continue };
        // The nearest workspace decides: one without the SDK is not a onecard workspace.
        workspace.get("dependencies").and_then(|d| d.get("onecard-sdk"))?;
        let members = workspace
            .get("members")
            .and_then(|m| m.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        return Some((ancestor.to_path_buf(), members));
    }
    None
}

/// Whether a `members` entry (a path, or a folder followed by `/*`) names `relative`.
fn member_matches(pattern: &str, relative: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(folder) => relative.rsplit_once('/').is_some_and(|(parent, _)| parent == folder),
        None => pattern.trim_end_matches('/') == relative,
    }
}

/// The crate's files, rendered for `name` and `layout`: (relative path, contents).
pub fn render(name: &str, layout: &Layout) -> Vec<(&'static str, String)> {
    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<String>()
        + "Plugin";
    let (package_fields, dependencies, tail) = match layout {
        Layout::Member { .. } => (
            "edition.workspace = true\nrust-version.workspace = true\nlicense.workspace = true".to_owned(),
            "onecard-sdk.workspace = true\nserde.workspace = true\nserde_json.workspace = true".to_owned(),
            "\n[lints]\nworkspace = true".to_owned(),
        ),
        standalone => {
            let sdk = match standalone {
                Layout::SdkPath(path) => format!("onecard-sdk = {{ path = {} }}", toml::Value::String(path.display().to_string())),
                Layout::SdkGit { repository, tag } => {
                    format!("onecard-sdk = {{ git = {}, tag = {} }}", toml::Value::String(repository.clone()), toml::Value::String(tag.clone()))
                }
                Layout::Member { .. } => unreachable!("handled above"),
            };
            (
                format!("edition = \"2024\"\nrust-version = \"{}\"", env!("CARGO_PKG_RUST_VERSION")),
                format!("{sdk}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\""),
                "\n# A crate of its own, not a member of an enclosing workspace.\n[workspace]\n\n\
                 # Small, fully optimised components (the settings onecard builds its own plugins with).\n\
                 [profile.release]\nopt-level = 3\nlto = true\ncodegen-units = 1\ndebug = false\nstrip = \"debuginfo\""
                    .to_owned(),
            )
        }
    };
    let values = [
        ("{{name}}", name),
        ("{{crate}}", crate_name.as_str()),
        ("{{Type}}", type_name.as_str()),
        ("{{wit}}", onecard_sdk_wit_version()),
        ("{{package_fields}}", package_fields.as_str()),
        ("{{dependencies}}", dependencies.as_str()),
        ("{{tail}}", tail.as_str()),
    ];
    FILES
        .iter()
        .map(|(path, template)| {
            let text = values.iter().fold((*template).to_owned(), |text, (key, value)| text.replace(key, value));
            (*path, text)
        })
        .collect()
}

/// The WIT package version the gateway was built with, read from the contract itself so that
/// it has one source: `package onecard:plugin@X.Y.Z;` in `sdk/wit/plugin.wit`.
fn onecard_sdk_wit_version() -> &'static str {
    const WIT: &str = include_str!("../../../sdk/wit/plugin.wit");
    WIT.lines()
        .find_map(|l| l.trim().strip_prefix("package onecard:plugin@"))
        .map(|v| v.trim_end_matches(';').trim())
        .unwrap_or("unknown")
}

/// Runs `onecard plugin new`, returning what to tell the user.
pub fn create(args: &NewArgs) -> Result<String, NewError> {
    validate_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let dir = std::path::absolute(&dir).map_err(|e| NewError::Io(format!("{}: {e}", dir.display())))?;
    if dir.symlink_metadata().is_ok() {
        return Err(NewError::DirExists(dir));
    }
    let layout = layout(&dir, args.sdk.as_deref())?;
    let files = render(&args.name, &layout);
    write_atomically(&dir, &files)?;

    let mut out = format!("created plugin `{}` in {}\n", args.name, dir.display());
    match &layout {
        Layout::Member { root, relative, listed } => {
            out.push_str(&format!("a member of the onecard workspace at {}\n", root.display()));
            if !listed {
                out.push_str(&format!("add \"{relative}\" to [workspace] members in {}\n", root.join("Cargo.toml").display()));
            }
        }
        Layout::SdkPath(path) => out.push_str(&format!("onecard-sdk from {}\n", path.display())),
        Layout::SdkGit { repository, tag } => {
            out.push_str(&format!("onecard-sdk from {repository} at {tag} (use --sdk PATH for a local checkout)\n"))
        }
    }
    out.push_str(&format!("next: cd {} && cargo test && onecard plugin build\n", dir.display()));
    Ok(out)
}

/// Writes `files` into a hidden sibling folder and renames it to `dir`, so that a failure part
/// way leaves nothing behind.
fn write_atomically(dir: &Path, files: &[(&str, String)]) -> Result<(), NewError> {
    let io = |path: &Path, e: std::io::Error| NewError::Io(format!("{}: {e}", path.display()));
    let parent = dir.parent().ok_or_else(|| NewError::Io(format!("{} has no parent folder", dir.display())))?;
    let leaf = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let created_parent = !parent.exists();
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let staging = parent.join(format!(".{leaf}.onecard-new-{}", std::process::id()));
    let written = (|| {
        for (path, text) in files {
            let target = staging.join(path);
            if let Some(folder) = target.parent() {
                std::fs::create_dir_all(folder).map_err(|e| io(folder, e))?;
            }
            std::fs::write(&target, text).map_err(|e| io(&target, e))?;
        }
        if dir.symlink_metadata().is_ok() {
            return Err(NewError::DirExists(dir.to_path_buf()));
        }
        std::fs::rename(&staging, dir).map_err(|e| io(dir, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
        if created_parent {
            let _ = std::fs::remove_dir(parent);
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["hello", "library-loans", "bus2", "ab"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "Hello", "2bus", "bus_2", "bus-", "-bus", "a--b", "über", "bus 2", "match", "test", "onecard-sdk", &"x".repeat(41)] {
            let err = validate_name(bad).expect_err(bad);
            assert!(err.to_string().starts_with("PLUGIN_NAME_INVALID"), "{err}");
        }
    }

    #[test]
    fn every_placeholder_is_filled_in_every_layout() {
        let layouts = [
            Layout::Member { root: "/w".into(), relative: "plugins/x".into(), listed: true },
            Layout::SdkPath("/src/onecard/sdk".into()),
            Layout::SdkGit { repository: "https://example.invalid/onecard".into(), tag: "v0.1.0".into() },
        ];
        for layout in &layouts {
            let files = render("city-library", layout);
            assert_eq!(files.len(), FILES.len());
            for (path, text) in &files {
                assert!(!text.contains("{{") && !text.contains("}}"), "{path} in {layout:?}:\n{text}");
            }
            let cargo: toml::Table = files[0].1.parse().expect("Cargo.toml is TOML");
            assert_eq!(cargo["package"]["name"].as_str(), Some("city-library"));
            assert_eq!(cargo.contains_key("workspace"), !matches!(layout, Layout::Member { .. }), "{layout:?}");
            let manifest: toml::Table = files[1].1.parse().expect("plugin.toml is TOML");
            assert_eq!(manifest["id"].as_str(), Some("city-library"));
            assert_eq!(manifest["wit"].as_str(), Some("onecard:plugin@1.0.0"));
            let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").expect("lib.rs").1;
            assert!(lib.contains("pub struct CityLibraryPlugin;") && lib.contains("export_plugin!(CityLibraryPlugin)"));
        }
        let files = render("x1", &layouts[1]);
        assert!(files[0].1.contains(r#"onecard-sdk = { path = "/src/onecard/sdk" }"#), "{}", files[0].1);
    }

    #[test]
    fn members_patterns() {
        assert!(member_matches("plugins/*", "plugins/hello"));
        assert!(!member_matches("plugins/*", "plugins/a/hello"));
        assert!(member_matches("tests", "tests"));
        assert!(!member_matches("plugins/*", "hello"));
    }

    #[test]
    fn inside_this_workspace_the_crate_is_a_member() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
        let at = |rel: &str| layout(&root.join(rel), None).expect("layout");
        assert_eq!(at("plugins/library"), Layout::Member { root: root.into(), relative: "plugins/library".into(), listed: true });
        assert!(matches!(at("elsewhere/library"), Layout::Member { listed: false, .. }));
    }

    #[test]
    fn a_bad_name_or_an_existing_folder_writes_nothing() {
        let tmp = std::env::temp_dir().join(format!("onecard-new-test-{}", std::process::id()));
        let args = |name: &str, dir: &Path| NewArgs { name: name.into(), dir: Some(dir.to_path_buf()), sdk: None };
        let err = create(&args("Bad_Name", &tmp.join("a"))).expect_err("bad name");
        assert_eq!(err.exit_code(), 2);
        assert!(!tmp.exists(), "nothing written for a bad name");

        std::fs::create_dir_all(tmp.join("taken")).expect("mkdir");
        std::fs::write(tmp.join("taken/keep.txt"), "mine").expect("write");
        let err = create(&args("hello", &tmp.join("taken"))).expect_err("exists");
        assert!(matches!(err, NewError::DirExists(_)) && err.exit_code() == 2, "{err}");
        let entries: Vec<_> = std::fs::read_dir(&tmp).expect("read").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(entries, ["taken"], "no staging folder left");
        assert_eq!(std::fs::read_dir(tmp.join("taken")).expect("read").count(), 1, "the existing folder is untouched");

        let err = create(&NewArgs { name: "hello".into(), dir: Some(tmp.join("b")), sdk: Some(tmp.clone()) }).expect_err("no sdk");
        assert!(matches!(err, NewError::SdkNotFound(_)) && err.exit_code() == 2, "{err}");
        assert!(!tmp.join("b").exists());
        std::fs::remove_dir_all(&tmp).expect("clean up");
    }
}
