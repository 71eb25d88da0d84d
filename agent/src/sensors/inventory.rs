//! Host facts (sent in hello) and the full host inventory (the `inventory` command), from
//! `sysinfo`.

use cordon_proto::{Disk, HostFacts, Inventory, NetworkInterface, User};
use std::collections::BTreeMap;
use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System, Users};

/// The facts an agent reports about its host in every hello.
pub fn host_facts() -> HostFacts {
    let clip = |mut s: String| {
        s.truncate(cordon_proto::limits::MAX_FACT);
        s
    };
    HostFacts {
        hostname: clip(System::host_name().unwrap_or_default()),
        os_name: clip(System::name().unwrap_or_default()),
        os_version: clip(System::os_version().unwrap_or_default()),
        kernel_version: clip(System::kernel_version().unwrap_or_default()),
        arch: clip(System::cpu_arch()),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Collects the inventory. Blocking: call it from a blocking task.
pub fn collect() -> Inventory {
    let sys = System::new_with_specifics(
        RefreshKind::nothing()
            .with_memory(MemoryRefreshKind::everything())
            .with_cpu(CpuRefreshKind::nothing()),
    );
    let disks = Disks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|d| Disk {
            name: d.name().to_string_lossy().into_owned(),
            mount_point: d.mount_point().display().to_string(),
            file_system: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
            removable: d.is_removable(),
        })
        .collect();
    let interfaces = interfaces();
    let mut users: Vec<User> = Users::new_with_refreshed_list()
        .list()
        .iter()
        .map(|u| User {
            name: u.name().to_string(),
            uid: **u.id(),
            gid: *u.group_id(),
            groups: u.groups().iter().map(|g| g.name().to_string()).collect(),
        })
        .collect();
    users.sort_by_key(|u| u.uid);
    Inventory {
        host: Some(host_facts()),
        uptime_secs: System::uptime(),
        boot_time_secs: System::boot_time(),
        cpu_count: sys.cpus().len() as u32,
        cpu_brand: sys
            .cpus()
            .first()
            .map(|c| c.brand().to_string())
            .unwrap_or_default(),
        memory_total_bytes: sys.total_memory(),
        memory_used_bytes: sys.used_memory(),
        swap_total_bytes: sys.total_swap(),
        disks,
        interfaces,
        users,
    }
}

/// Interfaces and their addresses, from getifaddrs(3): netlink answers for the network
/// namespace the agent runs in (sysfs would show the namespace that mounted it).
fn interfaces() -> Vec<NetworkInterface> {
    let mut by_name: BTreeMap<String, NetworkInterface> = BTreeMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    for ifa in addrs {
        let entry = by_name
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| NetworkInterface {
                name: ifa.interface_name.clone(),
                ..Default::default()
            });
        let Some(addr) = ifa.address else { continue };
        let prefix = |mask: Option<nix::sys::socket::SockaddrStorage>, max: u32| -> u32 {
            let bits = match mask {
                Some(m) if m.as_sockaddr_in().is_some() => {
                    m.as_sockaddr_in().map(|a| a.ip().to_bits().count_ones())
                }
                Some(m) => m.as_sockaddr_in6().map(|a| a.ip().to_bits().count_ones()),
                None => None,
            };
            bits.unwrap_or(max)
        };
        if let Some(v4) = addr.as_sockaddr_in() {
            entry
                .addresses
                .push(format!("{}/{}", v4.ip(), prefix(ifa.netmask, 32)));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            entry
                .addresses
                .push(format!("{}/{}", v6.ip(), prefix(ifa.netmask, 128)));
        } else if let Some(mac) = addr.as_link_addr().and_then(|l| l.addr()) {
            entry.mac = mac
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
        }
    }
    by_name.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_describes_this_host() {
        let inv = collect();
        assert!(inv.cpu_count >= 1);
        assert!(inv.memory_total_bytes > 0);
        assert!(
            inv.users.iter().any(|u| u.uid == 0 && u.name == "root"),
            "root is missing from users"
        );
        assert!(
            inv.interfaces.iter().any(|i| i.name == "lo"),
            "loopback is missing"
        );
        assert!(!inv.host.unwrap().kernel_version.is_empty());
    }
}
