package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// A minimal rtnetlink client for the two XDP operations cilium/ebpf's link
// package does not cover: asking which XDP program an interface runs and in
// which mode (IFLA_XDP), and detaching a program that was attached through
// netlink rather than a bpf_link (ip link set dev X xdp off, used by
// Options.Replace). It avoids a netlink dependency for ~150 lines.

// Values of IFLA_XDP_ATTACHED (enum in linux/if_link.h).
const (
	xdpAttachedNone = 0
	xdpAttachedDrv  = 1
	xdpAttachedSKB  = 2
	// 3 is offload (hardware), 4 several modes at once.
)

// xdpState is what IFLA_XDP says about an interface.
type xdpState struct {
	attached  uint8  // xdpAttached*
	progID    uint32 // the program, when exactly one mode is attached
	drvProgID uint32 // per mode, when attached (reported for multi)
	skbProgID uint32
}

// mode returns the attach mode of the program, or ModeAuto when none or
// several are attached.
func (s xdpState) mode() AttachMode {
	switch s.attached {
	case xdpAttachedDrv:
		return ModeNative
	case xdpAttachedSKB:
		return ModeGeneric
	}
	return ModeAuto
}

// queryXDP returns the XDP state of the interface with index ifindex in the
// calling thread's network namespace.
func queryXDP(ifindex int) (xdpState, error) {
	req := newNlRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST, ifindex)
	msgs, err := nlTalk(req)
	if err != nil {
		return xdpState{}, fmt.Errorf("query xdp on ifindex %d: %w", ifindex, err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		return parseLinkXDP(m.Data[unix.SizeofIfInfomsg:]), nil
	}
	return xdpState{}, fmt.Errorf("query xdp on ifindex %d: no link in reply", ifindex)
}

// parseLinkXDP reads the IFLA_XDP attribute from the attributes of an
// RTM_NEWLINK message.
func parseLinkXDP(attrs []byte) xdpState {
	var st xdpState
	forEachAttr(attrs, func(typ uint16, val []byte) {
		if typ&^unix.NLA_F_NESTED != unix.IFLA_XDP {
			return
		}
		forEachAttr(val, func(typ uint16, val []byte) {
			switch typ {
			case unix.IFLA_XDP_ATTACHED:
				if len(val) >= 1 {
					st.attached = val[0]
				}
			case unix.IFLA_XDP_PROG_ID:
				st.progID = attrU32(val)
			case unix.IFLA_XDP_DRV_PROG_ID:
				st.drvProgID = attrU32(val)
			case unix.IFLA_XDP_SKB_PROG_ID:
				st.skbProgID = attrU32(val)
			}
		})
	})
	return st
}

// setXDPFD attaches the program fd (or detaches, with fd -1) through netlink
// in the mode flags (XDP_FLAGS_SKB_MODE or XDP_FLAGS_DRV_MODE).
func setXDPFD(ifindex, fd int, flags uint32) error {
	req := newNlRequest(unix.RTM_SETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ifindex)
	var nested []byte
	nested = appendAttr(nested, unix.IFLA_XDP_FD, binary.NativeEndian.AppendUint32(nil, uint32(int32(fd))))
	nested = appendAttr(nested, unix.IFLA_XDP_FLAGS, binary.NativeEndian.AppendUint32(nil, flags))
	req = appendAttr(req, unix.IFLA_XDP|unix.NLA_F_NESTED, nested)
	binary.NativeEndian.PutUint32(req[0:4], uint32(len(req)))
	if _, err := nlTalk(req); err != nil {
		return fmt.Errorf("set xdp fd %d on ifindex %d: %w", fd, ifindex, err)
	}
	return nil
}

// newNlRequest returns a netlink message header and an ifinfomsg for
// ifindex; the caller appends attributes and then fixes the length.
func newNlRequest(typ uint16, flags uint16, ifindex int) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg, 64)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], 1) // sequence number
	// ifinfomsg: family 0, type 0, index, flags 0, change 0.
	binary.NativeEndian.PutUint32(b[unix.SizeofNlMsghdr+4:], uint32(int32(ifindex)))
	return b
}

func appendAttr(b []byte, typ uint16, val []byte) []byte {
	l := unix.SizeofRtAttr + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// forEachAttr calls fn for each well-formed attribute in b.
func forEachAttr(b []byte, fn func(typ uint16, val []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4])
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		fn(typ, b[unix.SizeofRtAttr:l])
		al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}

func attrU32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

// nlTalk sends one request on a fresh NETLINK_ROUTE socket and returns the
// reply messages up to the ack or the first non-multipart answer. A netlink
// error reply is returned as its errno.
func nlTalk(req []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var out []syscall.NetlinkMessage
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("netlink: short error message")
				}
				if e := int32(binary.NativeEndian.Uint32(m.Data[0:4])); e != 0 {
					return nil, os.NewSyscallError("netlink", unix.Errno(-e))
				}
				return out, nil // ack
			case unix.NLMSG_DONE:
				return out, nil
			default:
				out = append(out, m)
				if m.Header.Flags&unix.NLM_F_MULTI == 0 {
					return out, nil
				}
			}
		}
	}
}
