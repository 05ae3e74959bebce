// Package synth writes deterministic, labelled synthetic captures for
// floodguard's tests, demos and benchmarks: a realistic benign background
// plus one event (a flood of some kind, or a legitimate flash crowd), as a
// classic pcap with a JSON file of ground truth next to it.
//
//	labels, err := synth.Write(w, synth.UDPReflection, synth.Options{Seed: 1, Scale: 0.3})
//	pcap, labelsJSON, err := synth.WriteFiles(dir, synth.Pulsing, synth.Options{Seed: 1})
//
// # Determinism
//
// Equal scenario and options give byte-identical output. Every source
// (client, resolver, attacker) and every address-plan step draws from its own
// PCG stream derived from Options.Seed, and packets are merged by time with
// ties broken by source creation order. As a consequence the background of a
// seed is the same in every scenario of the same duration: removing the
// attack packets from, say, single-source leaves exactly the benign capture
// (in the signature scenarios, remove the packets of Labels.Services too).
//
// # Capture point
//
// Packets are as seen on the victim's ingress: every frame goes from the
// upstream router (02:00:00:00:00:01) to the victim (02:00:00:00:00:02,
// 198.18.0.1 or 2001:db8::1). There are no responses from the victim.
// Payloads are zero bytes; checksums (IPv4, TCP, UDP, ICMP, ICMPv6) are
// valid. Frames are kept up to Options.SnapLen bytes (default 128, enough
// for every header) while the pcap original length records the full wire
// size, 60 (padded) to 1514 bytes.
//
// # Address plan
//
//	198.18.0.1                victim (198.18.0.0/24 holds nothing else)
//	198.18.1.53, .54          DNS resolvers: UDP from port 53, 1-3 pps
//	198.18.1.123-.126         NTP servers (reflection-mix): UDP 123 -> 123
//	198.18.16.0-198.18.239.255  benign IPv4 clients, random hosts .1-.254 of
//	                          224 /24s; flash-crowd visitors come from the same
//	                          /24s (distinct addresses), as real ones would
//	198.18.250.1-.5           heavy clients (carrier-grade NAT), 300-500 pps
//	2001:db8:1000::/36        benign IPv6 clients, one random /64 each
//	198.19.1.1                single-source and pulsing attacker
//	198.19.7-9.0/24           carpet sources (~200 per /24)
//	198.19.16.0-198.19.255.255  reflectors, at most 10 per /24
//	2001:db8:bad:1::/64       rotating IPv6 attacker
//	198.18.0.0/15             spoofed SYN sources: any address except the
//	                          victim's /24 and every benign source
//	198.18.16-239.x, 198.19.16-255.x  reflection-mix reflectors and the
//	                          udp-botnet's IPv4 bots, scattered over both
//	                          ranges between the benign clients
//	2001:db8:1000::/36        udp-botnet IPv6 bots, one /64 each
//
// QUIC visitors (udp-botnet) come from the benign client pools like the
// flash crowd's. Benign and attack sources never share an address. The
// spoofed floods, the reflection-mix reflectors and the bots share prefixes
// with benign clients, which is the point: a detector must not ban prefixes
// for them. Labels.IsBenign, IsAttacker and BenignOverlaps answer "was this
// ban wrong" by address or by prefix.
//
// # Timeline
//
// At Scale 1 a capture is 150 s: 90 s of background (the detector's
// warm-up), a 30 s event, 30 s of background. Pulsing instead has 5 pulses
// of 5 s on, 10 s off from t=90 s, each its own labelled attack. Scale
// shrinks durations but keeps the warm-up at least 60 s and the event and
// the tail at least 10 s (pulses keep their 5/10 s pattern; at least 2
// cycles); it scales the numbers of sources but not per-source rates, nor
// the rates of the one-tool floods (single-source, spoofed, IPv6 rotation).
// In reflection-mix, DNS, NTP and memcached reflectors run for the whole
// event and CLDAP and SSDP reflectors join at its middle (on a whole
// second), each service its own labelled attack.
//
// Options.WarmUp replaces the warm-up in every scenario, and
// Options.HeavyClients the number of heavy clients. Options.FloodScale
// multiplies the rates of the one-tool floods (spoofed-syn-served
// included) and, in reflection-mix and udp-botnet, the numbers of
// reflectors and bots (with Scale, never below their floors; per-source
// rates stay). The floors keep those two floods at 2100-2350 pps, so their
// smallest captures (-scale 0.01 -warm-up 15s -flood-scale 0.08
// -heavy-clients 1) are still floods and gzip to about 1.1 MB.
//
// # Traffic
//
// Benign: ~2000 IPv4 and ~200 IPv6 clients at 0.5-5 pps (log-uniform), with
// bursty gaps of at least 105 ms, so no client ever sends more than 10
// packets in a 1 s tick. They run TCP sessions to ports 443 and 80 (SYN,
// handshake ACK, data and ACK segments, FIN, ACK), DNS-like queries from
// ephemeral ports and pings. Heavy clients interleave 16 sessions at a
// steady 300-500 pps. Together ~6.4k pps at Scale 1.
//
// Events: see the Scenario constants. The carpet event has two labelled
// attacks sharing one window: UDP from the first two /24s and bare SYNs from
// the third. Bench is Options.Packets packets of background plus a
// single-source UDP flood and a spoofed SYN flood (20 000 pps each) from
// t=5 s, for throughput benchmarks.
//
// # Signature scenarios
//
// SignatureScenarios (issue #13) are floods no list of sources can name:
// many quiet, scattered sources sharing a protocol, a port and a length
// range, beside benign traffic on the same port, present from the capture
// start and listed in Labels.Services (BenignServices adds the resolvers).
// Attack labels give the signature: UDPSrcPort or DstPort, and IPLen.
//
// reflection-mix, at Scale 1: 3000 DNS reflectors at 8-16 pps (UDP from
// port 53, 540-1500 bytes of IP), 300 NTP monlist reflectors at 60-100 pps
// (port 123, 468 bytes), 100 memcached at 20-40 pps (port 11211, 1380-1420
// bytes), 400 CLDAP at 5-15 pps (port 389, 1000-1500 bytes) and 1000 SSDP
// at 2-6 pps (port 1900, 280-400 bytes): ~63 kpps, ~71 kpps from the
// middle of the event. The resolvers (at most 508 bytes) and the four NTP
// servers (76 bytes, a packet every 1-4 s) answer from ports 53 and 123 all
// along; no reflected packet has their lengths.
//
// udp-botnet, at Scale 1: 30 000 bots (10% IPv6) at 0.5-1.5 pps each, UDP
// to Options.BotnetPort (443) from random ports with 60-120 byte payloads
// (88-168 bytes of IP): ~30 kpps. Beside them, 500 QUIC visitors at 1-5 pps
// send to UDP 443 from the capture start: Initial packets of 1200-1350
// bytes of payload, then ACKs of 20-39 and data of 200-1350, so no benign
// datagram to 443 has a bot's length (IP 48-87 and 228-1398).
//
// spoofed-syn-served: a 30 000 pps SYN flood to port 443, forged sources as
// in spoofed-syn, but each SYN shaped like the benign clients' (DF, the
// same TCP options and 64240 window, 60 bytes of IP). spoofed-syn's bare
// 40-byte SYNs can be told from real handshakes by length; these cannot:
// every signature of the flood matches the benign clients' SYNs to 443, so
// a detector should report it and drop nothing.
package synth
