//! The `onecard` command line (clap).
