//! Address arithmetic of subnets as Neutron's IPAM does it: the pools it generates, an
//! address by its index in a cidr and back.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::command::AllocationPool;

/// Neutron's `generate_pools`: the cidr's host addresses (IPv4: without the network and
/// broadcast addresses; IPv6: without the subnet-router anycast address) less the gateway.
pub fn default_allocation_pools(cidr: IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    let last_index = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let last = if cidr.addr().is_ipv4() {
        last_index.saturating_sub(1)
    } else {
        last_index
    };
    if last < 1 {
        return Vec::new();
    }
    let pool = |from: u128, to: u128| AllocationPool {
        start: nth_address(cidr, from),
        end: nth_address(cidr, to),
    };
    match gateway
        .filter(|g| cidr.contains(g))
        .map(|g| address_index(cidr, g))
    {
        Some(g) if (1..=last).contains(&g) => [(1, g.wrapping_sub(1)), (g + 1, last)]
            .into_iter()
            .filter(|(from, to)| from <= to && *from >= 1)
            .map(|(from, to)| pool(from, to))
            .collect(),
        _ => vec![pool(1, last)],
    }
}

/// The `n`th address of `net` (0: the network address).
pub fn nth_address(net: IpNet, n: u128) -> IpAddr {
    match net {
        IpNet::V4(v4) => IpAddr::V4((u32::from(v4.network()).wrapping_add(n as u32)).into()),
        IpNet::V6(v6) => IpAddr::V6((u128::from(v6.network()).wrapping_add(n)).into()),
    }
}

/// The index of `ip` in `net` (0 for an address of the other IP version).
pub fn address_index(net: IpNet, ip: IpAddr) -> u128 {
    match (net, ip) {
        (IpNet::V4(v4), IpAddr::V4(ip)) => u128::from(u32::from(ip) - u32::from(v4.network())),
        (IpNet::V6(v6), IpAddr::V6(ip)) => u128::from(ip) - u128::from(v6.network()),
        _ => 0,
    }
}
