//! Images: pull, push, store layout, archives, auth, and the faults the store must survive.

mod archives;
mod auth;
mod faults;
mod manage;
mod pull;
