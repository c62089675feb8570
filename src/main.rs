/// mimalloc: the request path allocates in many small pieces across threads, where it is
/// measurably faster than the system allocator (`BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    memberpass::cli::main()
}
