//! A network namespace of the test's own, joined to the host by a veth pair: a server bound
//! inside it ([`NetNs::listener`]) is reachable from the test's processes at
//! [`NetNs::addr`], until [`NetNs::cut`] brings the namespace's end of the link down. Packets
//! are then dropped without a word (the host's neighbour entry is permanent, so not even an
//! ARP failure reports it): connections hang until their timeouts, as in a real network
//! outage, rather than being refused.
//!
//! Needs root and iproute2's `ip netns`; [`NetNs::create`] says clearly when either is
//! missing. The addresses are a /30 of 10.213.0.0/16 private to the namespace and removed
//! with it on drop.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// A namespace and its link.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    ns_if: String,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace and its link. `Err` says why it cannot (not root, no `ip netns`,
    /// …): a test that needs it must fail with that message, not pass.
    pub fn create() -> Result<NetNs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(
                "this test needs root (network namespaces): run it as root, as CI does".to_owned(),
            );
        }
        ip(&["netns", "list"]).map_err(|e| format!("iproute2's `ip netns` is unavailable: {e}"))?;
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 60_000) * 4 + n % 4;
        let tag = format!("{:x}", id);
        let net = id % 16_000;
        let (a, b) = ((net / 64) as u8, ((net % 64) * 4) as u8);
        let ns = NetNs {
            name: format!("lt-test-{tag}"),
            host_if: format!("lth{tag}"),
            ns_if: format!("ltn{tag}"),
            host_addr: Ipv4Addr::new(10, 213, a, b + 1),
            ns_addr: Ipv4Addr::new(10, 213, a, b + 2),
        };
        // Left over by a killed run with the same ids.
        let _ = ip(&["netns", "del", &ns.name]);
        let _ = ip(&["link", "del", &ns.host_if]);
        ns.set_up()?;
        Ok(ns)
    }

    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut v = vec!["netns", "exec", &self.name, "ip"];
        v.extend_from_slice(args);
        ip(&v)
    }

    fn set_up(&self) -> Result<(), String> {
        let host = format!("{}/30", self.host_addr);
        let inside = format!("{}/30", self.ns_addr);
        ip(&["netns", "add", &self.name])?;
        ip(&[
            "link",
            "add",
            &self.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &self.ns_if,
        ])?;
        ip(&["link", "set", &self.ns_if, "netns", &self.name])?;
        ip(&["addr", "add", &host, "dev", &self.host_if])?;
        ip(&["link", "set", &self.host_if, "up"])?;
        self.exec(&["addr", "add", &inside, "dev", &self.ns_if])?;
        self.exec(&["link", "set", &self.ns_if, "up"])?;
        self.exec(&["link", "set", "lo", "up"])?;
        // A permanent neighbour entry: with the link cut, packets are sent into it and lost,
        // instead of an ARP failure answering "no route to host".
        let mac = self.exec(&["-o", "link", "show", &self.ns_if])?;
        let mac = mac
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .ok_or_else(|| format!("no MAC address in {mac:?}"))?
            .to_owned();
        ip(&[
            "neigh",
            "replace",
            &self.ns_addr.to_string(),
            "lladdr",
            &mac,
            "dev",
            &self.host_if,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    /// The namespace's address, as the test's processes reach it.
    pub fn addr(&self) -> Ipv4Addr {
        self.ns_addr
    }

    /// A listener on a free port of the namespace's address, bound inside the namespace.
    pub fn listener(&self) -> std::io::Result<TcpListener> {
        let path = format!("/var/run/netns/{}", self.name);
        let addr = SocketAddr::from((self.ns_addr, 0));
        // setns(2) moves the calling thread only: a thread of its own binds and ends; the
        // socket stays in the namespace.
        std::thread::spawn(move || -> std::io::Result<TcpListener> {
            use std::os::fd::AsRawFd;
            let f = std::fs::File::open(&path)?;
            // SAFETY: a valid namespace file descriptor; only this thread moves.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            TcpListener::bind(addr)
        })
        .join()
        .map_err(|_| std::io::Error::other("the binding thread panicked"))?
    }

    /// Cuts the link (the namespace's end goes down): packets to it are silently dropped.
    pub fn cut(&self) -> Result<(), String> {
        self.exec(&["link", "set", &self.ns_if, "down"]).map(|_| ())
    }

    /// Restores the link.
    pub fn restore(&self) -> Result<(), String> {
        self.exec(&["link", "set", &self.ns_if, "up"]).map(|_| ())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
