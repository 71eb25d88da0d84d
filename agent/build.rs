//! Compiles the eBPF process sensor (agent/bpf/process.bpf.c) with clang, when clang and the
//! libbpf headers are there. Without them the agent still builds, with a warning, and runs the
//! process connector or polling instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/process.bpf.c";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cordon_ebpf)");
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-env-changed=CORDON_CLANG");
    println!("cargo::rerun-if-env-changed=CORDON_NO_EBPF");
    if std::env::var_os("CORDON_NO_EBPF").is_some() {
        println!("cargo::warning=CORDON_NO_EBPF is set: building without the eBPF process sensor");
        return;
    }
    let clang = std::env::var("CORDON_CLANG").unwrap_or_else(|_| "clang".into());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("process.bpf.o");
    match compile(&clang, &object) {
        Ok(()) => println!("cargo::rustc-cfg=cordon_ebpf"),
        Err(why) => println!(
            "cargo::warning=building without the eBPF process sensor: {why} \
             (install clang and libbpf-dev for it)"
        ),
    }
}

fn compile(clang: &str, object: &Path) -> Result<(), String> {
    if !Path::new("/usr/include/bpf/bpf_helpers.h").exists() {
        return Err("the libbpf headers (/usr/include/bpf) are missing".into());
    }
    let multiarch = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let output = Command::new(clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg(format!("-I{multiarch}"))
        .arg("-c")
        .arg(SOURCE)
        .arg("-o")
        .arg(object)
        .output()
        .map_err(|e| format!("{clang} could not run ({e})"))?;
    if !output.status.success() {
        return Err(format!(
            "{clang} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}
