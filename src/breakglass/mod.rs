//! The break-glass lifecycle, free of the command line: the sealed file ([`sealed_file`]),
//! minting and rotating one cluster ([`mint`]), many at once ([`batch`]), the `use`
//! session ([`session`]) and who used it ([`audit`]), and the status report ([`status`]).

pub mod audit;
pub mod batch;
pub mod interrupt;
pub mod mint;
pub mod sealed_file;
pub mod session;
pub mod status;
