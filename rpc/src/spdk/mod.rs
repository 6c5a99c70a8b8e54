//! SPDK's storage management methods (the subset this project serves):
//! their params ([`params`]), their answers ([`info`]), the service a
//! process implements ([`service::BlockService`]), the method table
//! ([`methods::table`]) and configuration loading ([`config`]).

pub mod config;
pub mod info;
pub mod methods;
pub mod params;
pub mod service;

pub use methods::table;
pub use service::{BlockService, Create, Module, Resize};
