//! Build script: makes every binary, test and bench of this package find libtorch at run time.
//!
//! With the `torch` feature, torch-sys (a direct optional dependency for exactly this reason) reports the libtorch
//! lib dir it linked against as `DEP_TCH_LIBTORCH_LIB`; we bake it in as an rpath, so no `LD_LIBRARY_PATH` is
//! needed. Without the feature this does nothing and the crate builds with no libtorch at all.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        // torch-sys normally fails before we get here when it finds no libtorch; this covers the rest.
        panic!(
            "the `torch` feature needs libtorch, and torch-sys did not report where it is.\n\
             Install it with:   eval \"$(scripts/install-libtorch)\"   (sets LIBTORCH)\n\
             or build with a full PyTorch 2.13.0:   LIBTORCH_USE_PYTORCH=1 cargo build\n\
             or build without model validation:   cargo build --no-default-features"
        );
    };
    let lib_dir = lib_dir.to_string_lossy();
    if !std::path::Path::new(&*lib_dir)
        .join("libtorch_cpu.so")
        .exists()
    {
        println!(
            "cargo:warning=libtorch lib dir {lib_dir} has no libtorch_cpu.so; run scripts/install-libtorch"
        );
    }
    // rpath (RUNPATH) for this package's own link targets: bins, tests, benches, examples.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
}
