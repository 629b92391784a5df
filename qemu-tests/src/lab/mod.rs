//! The lab: the host-side network the guest talks to, built on this machine.
//!
//! - [`netlab`]: network namespaces with DHCP, the VPN gateway and the inner network.
//! - [`conference_lab`]: the conference (Janus, test page, resolver) behind the tunnel.
//! - [`vpn_session`]: one boot of a VPN test image inside the lab, its capture judged.
//! - [`lab_ca`]: the TEST CA revoking a stick's certificate (a CRL for the gateway).
//! - [`pcap`]: reads the guest's uplink capture and judges every frame it sent.
//! - [`smartcard`]: a person's smartcard: QEMU's emulated CCID reader and CAC card.

pub mod conference_lab;
pub mod lab_ca;
pub mod netlab;
pub mod pcap;
pub mod smartcard;
pub mod vpn_session;
