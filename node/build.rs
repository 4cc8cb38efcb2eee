//! The explorer's assets are compiled into cachetd from `explorer/dist`: say how to build
//! them when they are missing, instead of failing inside the embedding macro.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../explorer/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        panic!(
            "the explorer is not built ({} is missing): run `explorer/build` (Node.js 20 and \
             npm; the README's set-up commands run it)",
            dist.join("index.html").display()
        );
    }
}
