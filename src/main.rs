fn main() -> std::process::ExitCode {
    memberpass::cli::main()
}
