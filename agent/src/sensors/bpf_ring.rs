//! What the eBPF sensors (process and network) share: loading an embedded CO-RE object
//! against the kernel's BTF, finding its programs by name and kind, waiting on a ring buffer
//! and draining it, and reading a per-kind drop counter map.

use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use aya::{Btf, Ebpf, EbpfLoader};
use rustix::event::{PollFd, PollFlags};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// Loads `object` (programs not yet attached).
pub fn load(object: &[u8]) -> Result<(Ebpf, Btf), String> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let bpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(object)
        .map_err(|e| format!("loading the BPF object: {e}"))?;
    Ok((bpf, btf))
}

/// The program `name` of the object, as the kind `P` it must be.
pub fn program<'a, P>(bpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, String>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    bpf.program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?
        .try_into()
        .map_err(|e| format!("{name}: {e}"))
}

/// Takes a map out of the object by name.
pub fn take_map(bpf: &mut Ebpf, name: &str) -> Result<Map, String> {
    bpf.take_map(name)
        .ok_or_else(|| format!("map {name} missing from the object"))
}

/// A ring buffer and its descriptor, to wait on.
pub struct Ring {
    ring: RingBuf<MapData>,
    fd: OwnedFd,
}

impl Ring {
    pub fn take(bpf: &mut Ebpf, name: &str) -> Result<Self, String> {
        let map = take_map(bpf, name)?;
        let fd = match &map {
            Map::RingBuf(data) => data.fd().as_fd().try_clone_to_owned(),
            _ => return Err(format!("map {name} is not a ring buffer")),
        }
        .map_err(|e| format!("ring buffer descriptor: {e}"))?;
        let ring = RingBuf::try_from(map).map_err(|e| e.to_string())?;
        Ok(Self { ring, fd })
    }

    /// Waits up to `timeout` for records (an interrupted wait is not an error).
    pub fn wait(&self, timeout: Duration) -> Result<(), rustix::io::Errno> {
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Hands every record waiting to `f`, in order; says whether there was any.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> bool {
        let mut any = false;
        while let Some(item) = self.ring.next() {
            any = true;
            f(&item);
        }
        any
    }
}

/// A per-CPU array of drop counters, one slot per record kind.
pub struct Drops(PerCpuArray<MapData, u64>);

impl Drops {
    pub fn take(bpf: &mut Ebpf, name: &str) -> Result<Self, String> {
        let map = take_map(bpf, name)?;
        Ok(Self(PerCpuArray::try_from(map).map_err(|e| e.to_string())?))
    }

    /// Records dropped so far in slot `kind`, summed over CPUs.
    pub fn count(&self, kind: u32) -> u64 {
        self.0
            .get(&kind, 0)
            .map(|values| values.iter().sum())
            .unwrap_or_default()
    }
}
