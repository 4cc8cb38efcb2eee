//! The explorer's assets are compiled into cachetd from `explorer/dist`: say how to build
//! them when they are missing, instead of failing inside the embedding macro.

fn main() {
    // Read at run time: a build script compiled for one clone is reused by another clone
    // that shares the target directory, and `env!` would keep the first clone's path.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dist = std::path::Path::new(&manifest_dir).join("../explorer/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        panic!(
            "the explorer is not built ({} is missing): run `explorer/build` (Node.js 20 and \
             npm; the README's set-up commands run it)",
            dist.join("index.html").display()
        );
    }
}
