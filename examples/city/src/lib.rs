//! # onecard-city — the example city
//!
//! What `cargo run -p onecard-city` starts: Hangzhou with its five applications (parks, transit,
//! hospital, subsidy, ecny) filed and online, the sandbox test doubles of the systems behind
//! them (fare system, medical insurance, bank, e-CNY operator), and `onecard serve` (catalog and
//! gateway in one process) over `.onecard/city.db`. Then `onecard-city calls` plays a morning in
//! the city against it through the venue client.
//!
//! Starting ([`start`]), in order:
//!
//! 1. the sandbox doubles on their port ([`sandbox`]), accounts funded;
//! 2. the catalog database opened (created on first start);
//! 3. each plugin component uploaded to the catalog's artifact store and filed with its real
//!    SHA-256, the manifest from its own `describe` and its backends pointed at the doubles, over
//!    the placeholders of `catalog.toml` ([`filing`]); applying the same catalog again changes
//!    nothing;
//! 4. holder data written keyed by the catalog's card references ([`holders`]);
//! 5. a fresh admin token ([`admin`]), and the server from `onecard.toml`.
//!
//! **A rebuilt plugin is a new filing.** When a component's hash (or its manifest or backends)
//! differs from the live filing, the city files it as filing n+1, online, and moves the old
//! one to `terminated` — as a department would, and so the filing history stays true. The
//! database is never recreated behind the user's back; delete `.onecard/` to start afresh.
#![forbid(unsafe_code)]

pub mod admin;
pub mod banner;
pub mod calls;
pub mod city;
pub mod error;
pub mod filing;
pub mod holders;
pub mod paths;
pub mod sandbox;

pub use city::{City, CityOptions, start};
pub use error::CityError;
