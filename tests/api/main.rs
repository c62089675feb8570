//! Black-box tests: the real server over real HTTP, and the real binary.

mod arguments;
mod audit;
mod bad_input;
mod browser;
mod catalog;
mod cli;
mod dashboard;
mod dashboard_sign_in;
mod demo;
mod durability;
mod faults;
mod fuzz;
mod hardening;
mod helpers;
mod leaks;
mod matrix;
mod mcp;
mod replicas;
mod requests;
mod review;
mod scan;
mod scanner_rules;
mod secrets;
mod served;
mod timing;
mod tokens;
