//! Decides whether the agent embeds its eBPF sensors. They are the CO-RE objects committed at
//! `agent/bpf/process.bpf.o` and `network.bpf.o`, built from their `.bpf.c` sources by
//! `scripts/build-bpf.sh` (CI fails when one is stale); this script never runs a compiler, so
//! the agent builds without clang or libbpf-dev and every build has the sensors. They are left
//! out only when `CORDON_NO_EBPF` is set or the target is big-endian (the objects are
//! little-endian BPF); the process connector and polling then remain, and no network sensor.

const OBJECTS: [&str; 2] = ["bpf/process.bpf.o", "bpf/network.bpf.o"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cordon_ebpf)");
    for object in OBJECTS {
        println!("cargo::rerun-if-changed={object}");
    }
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
    for object in OBJECTS {
        if !std::path::Path::new(object).is_file() {
            // The objects are part of the source tree; a checkout without one is incomplete.
            panic!("agent/{object} is missing: restore it from git or run scripts/build-bpf.sh");
        }
    }
    println!("cargo::rustc-cfg=cordon_ebpf");
}
