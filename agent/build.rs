//! Decides whether the agent embeds its eBPF process sensor. The sensor is the CO-RE object
//! committed at `agent/bpf/process.bpf.o`, built from `process.bpf.c` by
//! `scripts/build-bpf.sh` (CI fails when it is stale); this script never runs a compiler, so
//! the agent builds without clang or libbpf-dev and every build has the sensor. It is left
//! out only when `CORDON_NO_EBPF` is set or the target is big-endian (the object is
//! little-endian BPF); the process connector and polling then remain.

const OBJECT: &str = "bpf/process.bpf.o";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cordon_ebpf)");
    println!("cargo::rerun-if-changed={OBJECT}");
    println!("cargo::rerun-if-env-changed=CORDON_NO_EBPF");
    if std::env::var_os("CORDON_NO_EBPF").is_some() {
        println!("cargo::warning=CORDON_NO_EBPF is set: building without the eBPF process sensor");
        return;
    }
    if std::env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() == Ok("big") {
        println!(
            "cargo::warning=the committed eBPF object is little-endian: building without the \
             eBPF process sensor for this big-endian target"
        );
        return;
    }
    if !std::path::Path::new(OBJECT).is_file() {
        // The object is part of the source tree; a checkout without it is incomplete.
        panic!("agent/{OBJECT} is missing: restore it from git or run scripts/build-bpf.sh");
    }
    println!("cargo::rustc-cfg=cordon_ebpf");
}
