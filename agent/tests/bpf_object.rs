//! The committed eBPF objects are the ones their manifests describe, built from the sources as
//! they are now: `scripts/build-bpf.sh` writes `agent/bpf/NAME.bpf.o` and its manifest for
//! every `NAME.bpf.c` (process and network), and these tests fail (without clang) when someone
//! changes a source and forgets to rebuild, or replaces an object by hand. CI's
//! `scripts/build-bpf.sh --check` also rebuilds them and compares the bytes.

use std::path::PathBuf;

/// The sensors the agent embeds.
const OBJECTS: [&str; 2] = ["process", "network"];

fn bpf_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bpf")
}

fn sha256_hex(name: &str) -> String {
    let bytes = std::fs::read(bpf_dir().join(name)).expect("read a committed BPF file");
    hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes))
}

fn recorded(object: &str, key: &str) -> String {
    let path = bpf_dir().join(format!("{object}.bpf.o.manifest"));
    let manifest = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is committed: {e}", path.display()));
    let prefix = format!("{key}: ");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the {object} manifest has no {key}"))
        .to_string()
}

const REBUILD: &str = "run scripts/build-bpf.sh (needs clang and libbpf-dev) and commit \
                       the object with its manifest";

#[test]
fn every_source_has_its_object_and_manifest() {
    let mut sources: Vec<String> = std::fs::read_dir(bpf_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bpf.c").map(str::to_string))
        .collect();
    sources.sort();
    let mut expected: Vec<String> = OBJECTS.iter().map(|o| o.to_string()).collect();
    expected.sort();
    assert_eq!(sources, expected, "the agent embeds exactly these objects");
}

#[test]
fn the_committed_objects_were_built_from_these_sources() {
    for o in OBJECTS {
        assert_eq!(
            sha256_hex(&format!("{o}.bpf.c")),
            recorded(o, "source_sha256"),
            "agent/bpf/{o}.bpf.c changed since {o}.bpf.o was built: {REBUILD}"
        );
    }
}

#[test]
fn the_committed_objects_are_the_ones_their_manifests_name() {
    for o in OBJECTS {
        assert_eq!(
            sha256_hex(&format!("{o}.bpf.o")),
            recorded(o, "object_sha256"),
            "agent/bpf/{o}.bpf.o is not the object its manifest describes: {REBUILD}"
        );
    }
}

#[test]
fn the_committed_objects_are_little_endian_bpf_with_btf() {
    for o in OBJECTS {
        let object = std::fs::read(bpf_dir().join(format!("{o}.bpf.o"))).expect("read");
        assert_eq!(&object[..4], b"\x7fELF", "{o}: an ELF file");
        assert_eq!(object[5], 1, "{o}: little-endian (EI_DATA = ELFDATA2LSB)");
        assert_eq!(
            u16::from_le_bytes([object[18], object[19]]),
            247,
            "{o}: e_machine is EM_BPF"
        );
        let has = |name: &[u8]| object.windows(name.len()).any(|w| w == name);
        assert!(
            has(b".BTF\0") && has(b".BTF.ext\0"),
            "{o}: BTF for CO-RE relocations"
        );
        let flags = recorded(o, "flags");
        assert!(
            flags.contains("-g") && flags.contains("-fdebug-compilation-dir=."),
            "{o}: BTF, and no checkout path in the object: {flags}"
        );
    }
}
