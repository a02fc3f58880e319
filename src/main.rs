//! The `livehub` binary: everything lives in the library; this only hands over to its CLI,
//! which prints its own errors and picks the exit status.

fn main() -> std::process::ExitCode {
    livehub::cli::main()
}
