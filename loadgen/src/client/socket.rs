//! Creation of non-blocking client sockets, optionally bound to a source address.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

/// Starts a non-blocking connect to `addr` with `TCP_NODELAY`.
///
/// With `sources`, binds to `sources[*next]` (round-robin) using
/// `IP_BIND_ADDRESS_NO_PORT`, so the kernel picks the port at connect time per
/// 4-tuple; on `EADDRNOTAVAIL` (ports exhausted) it moves on to the next source.
pub(crate) fn connect(
    addr: SocketAddr,
    sources: &[IpAddr],
    next: &mut usize,
) -> io::Result<TcpStream> {
    let tries = sources.len().max(1);
    let mut last_err = None;
    for _ in 0..tries {
        let source = (!sources.is_empty()).then(|| {
            let s = sources[*next % sources.len()];
            *next = next.wrapping_add(1);
            s
        });
        match try_connect(addr, source) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()))
}

fn try_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source {
        bind_no_port(&socket)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` (Linux): defer the port choice to `connect`.
fn bind_no_port(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: valid fd, option value points to a live c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
