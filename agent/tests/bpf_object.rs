//! The committed eBPF object is the one its manifest describes, built from the source as it
//! is now: `scripts/build-bpf.sh` writes `agent/bpf/process.bpf.o` and its manifest, and this
//! test fails (without clang) when someone changes `process.bpf.c` and forgets to rebuild, or
//! replaces the object by hand. CI's `scripts/build-bpf.sh --check` also rebuilds it and
//! compares the bytes.

use std::path::PathBuf;

fn bpf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bpf")
}

fn sha256_hex(name: &str) -> String {
    let bytes = std::fs::read(bpf_dir().join(name)).expect("read a committed BPF file");
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
}

fn recorded(key: &str) -> String {
    let manifest = std::fs::read_to_string(bpf_dir().join("process.bpf.o.manifest"))
        .expect("agent/bpf/process.bpf.o.manifest is committed");
    let prefix = format!("{key}: ");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the manifest has no {key}"))
        .to_string()
}

const REBUILD: &str = "run scripts/build-bpf.sh (needs clang and libbpf-dev) and commit \
                       agent/bpf/process.bpf.o with its manifest";

#[test]
fn the_committed_object_was_built_from_this_source() {
    assert_eq!(
        sha256_hex("process.bpf.c"),
        recorded("source_sha256"),
        "agent/bpf/process.bpf.c changed since process.bpf.o was built: {REBUILD}"
    );
}

#[test]
fn the_committed_object_is_the_one_its_manifest_names() {
    assert_eq!(
        sha256_hex("process.bpf.o"),
        recorded("object_sha256"),
        "agent/bpf/process.bpf.o is not the object its manifest describes: {REBUILD}"
    );
}

#[test]
fn the_committed_object_is_little_endian_bpf_with_btf() {
    let object = std::fs::read(bpf_dir().join("process.bpf.o")).expect("read the object");
    assert_eq!(&object[..4], b"\x7fELF", "an ELF file");
    assert_eq!(object[5], 1, "little-endian (EI_DATA = ELFDATA2LSB)");
    assert_eq!(
        u16::from_le_bytes([object[18], object[19]]),
        247,
        "e_machine is EM_BPF"
    );
    let has = |name: &[u8]| object.windows(name.len()).any(|w| w == name);
    assert!(
        has(b".BTF\0") && has(b".BTF.ext\0"),
        "BTF for CO-RE relocations"
    );
    let flags = recorded("flags");
    assert!(
        flags.contains("-g") && flags.contains("-fdebug-compilation-dir=."),
        "BTF, and no checkout path in the object: {flags}"
    );
}
