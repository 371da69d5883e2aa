//! Listening sockets. An IPv6 socket listens for IPv6 alone
//! (IPV6_V6ONLY), so that `0.0.0.0:1002` and `[::]:1002` listen side by
//! side, as nginx and slapd do; one named `dual` also takes IPv4 clients,
//! as IPv4-mapped addresses. Runs on the thread that starts the server.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};

/// Connections waiting for accept(2) before the kernel refuses more: a
/// burst of NetMeeting clients, each a connection per operation.
const BACKLOG: i32 = 1024;

/// Binds and listens on `addr`; an IPv6 address takes IPv4 clients too
/// only when `dual`.
pub fn bind_listener(addr: SocketAddr, dual: bool) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    // A restart binds again at once, whatever connections of the last
    // run are still in TIME_WAIT.
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &!dual)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(TcpListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_ipv6_listen_on_one_port_side_by_side() {
        let v4 = bind_listener("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let port = v4.local_addr().unwrap().port();
        let Ok(v6) = bind_listener(SocketAddr::from(([0u16; 8], port)), false) else {
            panic!("[::]:{port} next to 127.0.0.1:{port}: this needs IPv6 on the machine");
        };
        assert_eq!(v6.local_addr().unwrap().port(), port);
        // IPv4 clients reach the IPv4 socket, not the IPv6 one.
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        v4.set_nonblocking(true).unwrap();
        v6.set_nonblocking(true).unwrap();
        assert!(v4.accept().is_ok());
        assert!(v6.accept().is_err());
    }

    #[test]
    fn a_dual_socket_takes_ipv4_clients_as_mapped_addresses() {
        let dual = bind_listener("[::]:0".parse().unwrap(), true).unwrap();
        let port = dual.local_addr().unwrap().port();
        std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, peer) = dual.accept().unwrap();
        assert_eq!(peer.ip().to_canonical().to_string(), "127.0.0.1");
    }
}
