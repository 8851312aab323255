//! Sets `knhk_dispatch` where the kernels have their x86-64 run-time
//! dispatch layer: x86-64 with SSE2 (not kernel targets, which turn SSE
//! off), not under Miri (which cannot run CPUID or the vector code), and
//! not with the `no-simd` feature. The condition is written here once; the
//! code says `#[cfg(knhk_dispatch)]`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(knhk_dispatch)");
    println!("cargo::rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let sse2 = features.split(',').any(|f| f == "sse2");
    let miri = std::env::var_os("CARGO_CFG_MIRI").is_some();
    let no_simd = std::env::var_os("CARGO_FEATURE_NO_SIMD").is_some();
    if arch == "x86_64" && sse2 && !miri && !no_simd {
        println!("cargo::rustc-cfg=knhk_dispatch");
    }
}
