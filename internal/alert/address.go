package alert

import "net/netip"

// Origins of a source IP.
const (
	// OriginPeer is the address the API server saw the connection come from: the last
	// entry of a request's sourceIPs (detect.Fields.Peer).
	OriginPeer = "peer"
	// OriginClientSupplied is an X-Forwarded-For or X-Real-Ip entry: any client can write it.
	OriginClientSupplied = "client-supplied"
)

// Address classes.
const (
	ClassPublic    = "public"     // a global unicast address outside the private ranges
	ClassPrivate   = "private"    // RFC 1918 and IPv6 unique local addresses
	ClassLoopback  = "loopback"   // 127.0.0.0/8, ::1
	ClassLinkLocal = "link-local" // 169.254.0.0/16, fe80::/10 (unicast and multicast)
	ClassOther     = "other"      // unspecified or multicast
	ClassInvalid   = "invalid"    // not an IP address (a forged header can hold anything)
)

// classify says what kind of address s is. An IPv4 address written as IPv6
// (::ffff:10.0.0.1) is classified as the IPv4 address.
func classify(s string) string {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return ClassInvalid
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback():
		return ClassLoopback
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return ClassLinkLocal
	case ip.IsPrivate():
		return ClassPrivate
	case ip.IsGlobalUnicast():
		return ClassPublic
	}
	return ClassOther
}
