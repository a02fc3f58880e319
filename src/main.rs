//! The `livehub` binary: everything lives in the library; this only hands over to its CLI.

fn main() -> anyhow::Result<()> {
    livehub::cli::main()
}
