// Package inflate decompresses gzip streams (RFC 1952 members of DEFLATE data, RFC 1951)
// held whole in memory, as a CloudWatch Logs subscription delivers them, faster than
// compress/gzip: the input is a byte slice, so the bits are loaded eight bytes at a
// time; each Huffman code is found with one or two table lookups that also give the
// base length or distance; and a match is copied eight bytes at a time within one
// buffer that holds both the history and the bytes not yet read.
//
// It accepts and rejects what compress/gzip does (the same header rules, multistream,
// CRC-32 and size checks, a truncated stream fails with io.ErrUnexpectedEOF), and gives
// the same bytes: FuzzInflate and the tests compare the two. A caller reads the bytes
// either through Read, which copies them, or in place in the Reader's buffer (Fill and
// Bytes), as the subscription decoder does.
package inflate

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// ErrCorrupt is the error of a DEFLATE stream that breaks RFC 1951.
var ErrCorrupt = errors.New("inflate: corrupt DEFLATE data")

const (
	histSize = 32 << 10 // the furthest a match may reach back
	maxMatch = 258
	// bufSize is the size of the buffer: the history, then room for what one fill
	// decodes. Large enough that keeping the history costs little; small enough to
	// stay in a core's L2 cache with the caller's buffer.
	bufSize = histSize + 256<<10
	// slack is the room a match needs past its end, copied eight bytes at a time.
	slack = maxMatch + 8
)

type state uint8

const (
	stateHeader  state = iota // next: a block header
	stateStored               // in a stored block
	stateHuff                 // in a block of Huffman codes
	stateTrailer              // next: the gzip trailer
	stateEOF                  // the end of the last member
)

// Reader is an io.Reader of the inflated bytes of a gzip stream in memory. The zero
// Reader is ready for Reset; a Reader can be reset and reused.
type Reader struct {
	in   []byte
	ip   int    // the next input byte to load into bits; past len(in), zero padding
	bits uint64 // loaded bits, the next one lowest
	nb   uint   // how many of bits are valid

	buf     []byte // history, then the decoded bytes not yet read
	op      int    // end of the decoded bytes
	rp      int    // the next byte to read
	crcFrom int    // start of the decoded bytes not yet in crc
	base    int    // start of the current member's bytes (0 once the history is all its)

	state  state
	final  bool // the current block is the member's last
	stored int  // bytes left in a stored block

	lit, dist       []uint32 // the tables of the current block
	dynLit, dynDist []uint32 // room for the tables of dynamic blocks

	crc  uint32
	size uint32
	err  error

	// MaxFill, when positive, is the most bytes one Fill decodes (a match may pass it by
	// up to 257): tests set it to cut the stream everywhere. Reset keeps it.
	MaxFill int
}

// Reset starts inflating the gzip stream in; it reads the first member's header and
// returns its error, as gzip.Reader.Reset does (io.EOF for an empty stream).
func (z *Reader) Reset(in []byte) error {
	if z.buf == nil || len(z.buf) > 4*bufSize {
		// A buffer grown by Fill for a long message is released down to the usual size.
		z.buf = make([]byte, bufSize)
	}
	if z.dynLit == nil {
		z.dynLit = make([]uint32, litTableSize)
		z.dynDist = make([]uint32, distTableSize)
	}
	*z = Reader{in: in, buf: z.buf, dynLit: z.dynLit, dynDist: z.dynDist, MaxFill: z.MaxFill}
	ip, err := header(in, 0)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && len(in) == 0 {
			err = io.EOF
		}
		z.err = err
		return err
	}
	z.ip = ip
	return nil
}

// Read reads inflated bytes into p.
func (z *Reader) Read(p []byte) (int, error) {
	for z.rp == z.op {
		if z.err != nil {
			return 0, z.err
		}
		if z.state == stateEOF {
			return 0, io.EOF
		}
		z.fill()
	}
	n := copy(p, z.buf[z.rp:z.op])
	z.rp += n
	return n, nil
}

// header reads a gzip member header (RFC 1952, section 2.3) at in[ip:] with the rules of
// compress/gzip, and returns the index after it.
func header(in []byte, ip int) (int, error) {
	const (
		flagHdrCrc  = 1 << 1
		flagExtra   = 1 << 2
		flagName    = 1 << 3
		flagComment = 1 << 4
	)
	h := in[ip:]
	if len(h) < 10 {
		return 0, io.ErrUnexpectedEOF
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
		return 0, gzip.ErrHeader
	}
	flg := h[3]
	i := 10
	if flg&flagExtra != 0 {
		if len(h) < i+2 {
			return 0, io.ErrUnexpectedEOF
		}
		i += 2 + int(binary.LittleEndian.Uint16(h[i:]))
		if len(h) < i {
			return 0, io.ErrUnexpectedEOF
		}
	}
	for _, f := range [2]byte{flagName, flagComment} {
		if flg&f == 0 {
			continue
		}
		// compress/gzip reads these strings into a 512-byte buffer, NUL included.
		end := -1
		for k := i; k < len(h) && k-i < 512; k++ {
			if h[k] == 0 {
				end = k
				break
			}
		}
		if end < 0 {
			if len(h)-i < 512 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, gzip.ErrHeader
		}
		i = end + 1
	}
	if flg&flagHdrCrc != 0 {
		if len(h) < i+2 {
			return 0, io.ErrUnexpectedEOF
		}
		if uint16(crc32.ChecksumIEEE(h[:i])) != binary.LittleEndian.Uint16(h[i:]) {
			return 0, gzip.ErrHeader
		}
		i += 2
	}
	return ip + i, nil
}

// Bytes returns the decoded bytes the Reader holds, for a caller that reads them in place
// with Fill instead of Read. Each Fill may move them, and reallocate the buffer.
func (z *Reader) Bytes() []byte { return z.buf[:z.op] }

// Fill decodes more bytes into the buffer Bytes returns, for a caller that reads them in
// place instead of copying them with Read (the two are not mixed on one stream). keep is
// the index in Bytes of the first byte the caller still needs: when less than room bytes
// are free, Fill moves the bytes from there, with the 32 KiB of history before them, to
// the front of the buffer, and grows the buffer if they still leave less than room. It
// returns how far the kept bytes moved, and once no byte is added, the stream's error or
// io.EOF at its end.
func (z *Reader) Fill(keep, room int) (shift int, err error) {
	shift = z.makeRoom(keep, room)
	before := z.op
	lim := len(z.buf) - slack
	if z.MaxFill > 0 {
		lim = min(lim, z.op+z.MaxFill)
	}
	z.decode(lim)
	if z.op == before {
		if z.err != nil {
			return shift, z.err
		}
		if z.state == stateEOF {
			return shift, io.EOF
		}
	}
	return shift, nil
}

// fill decodes more bytes into z.buf after z.op for Read, first dropping what was read
// but the history. It is called only when every decoded byte has been read.
func (z *Reader) fill() {
	z.makeRoom(z.op, len(z.buf)-slack-histSize)
	z.decode(len(z.buf) - slack)
}

// makeRoom is the buffer's one way of freeing space: when fewer than room bytes are free,
// it moves the bytes from keep, with the 32 KiB of history before them, to the front, and
// grows the buffer if they still leave less than room. It returns how far they moved.
// It is called between decodes, when every decoded byte has been summed.
func (z *Reader) makeRoom(keep, room int) int {
	if len(z.buf)-slack-z.op >= room {
		return 0
	}
	s := max(0, min(keep, z.op-histSize))
	if s > 0 {
		copy(z.buf, z.buf[s:z.op])
		z.op -= s
		z.rp = max(0, z.rp-s)
		z.crcFrom, z.base = z.op, max(0, z.base-s)
	}
	if need := z.op + room + slack; need > len(z.buf) {
		// A quarter more than needed: growth stays amortised, and the buffer within a
		// quarter of what the longest kept run takes.
		nb := make([]byte, need+need/4)
		copy(nb, z.buf[:z.op])
		z.buf = nb
	}
	return s
}

// decode decodes until z.op reaches lim (at most len(z.buf)-slack), or the stream ends
// or fails.
func (z *Reader) decode(lim int) {
	for z.op < lim && z.err == nil && z.state != stateEOF {
		switch z.state {
		case stateHeader:
			z.blockHeader()
		case stateStored:
			z.storedBytes(lim)
		case stateHuff:
			z.huff(lim)
			if z.state == stateHuff && z.err == nil && z.op < lim {
				z.huffTail(lim)
			}
		case stateTrailer:
			z.trailer()
		}
	}
	z.sum()
}

// sum adds the decoded bytes not yet summed to the member's CRC-32 and size.
func (z *Reader) sum() {
	z.crc = crc32.Update(z.crc, crc32.IEEETable, z.buf[z.crcFrom:z.op])
	z.size += uint32(z.op - z.crcFrom)
	z.crcFrom = z.op
}

// refill loads bits until at least 56 are valid: eight input bytes at once while there
// are eight, else one at a time, zeros past the end (overrun tells when they were used).
func (z *Reader) refill() {
	if z.ip+8 <= len(z.in) {
		z.bits |= binary.LittleEndian.Uint64(z.in[z.ip:]) << z.nb
		z.ip += int(63-z.nb) >> 3
		z.nb |= 56
		return
	}
	for z.nb <= 56 {
		if z.ip < len(z.in) {
			z.bits |= uint64(z.in[z.ip]) << z.nb
		}
		z.ip++
		z.nb += 8
	}
}

// overrun reports whether bits past the end of the input were consumed.
func (z *Reader) overrun() bool {
	return z.ip > len(z.in) && uint(z.ip-len(z.in))*8 > z.nb
}

// take consumes n <= 32 bits and returns them.
func (z *Reader) take(n uint) uint32 {
	if z.nb < n {
		z.refill()
	}
	v := uint32(z.bits & (1<<n - 1))
	z.bits >>= n
	z.nb -= n
	return v
}

// align drops the bits to the next byte boundary and gives back the whole bytes still
// in the bit buffer, so that z.ip is the next input byte; false if that is past the end.
func (z *Reader) align() bool {
	z.ip -= int(z.nb >> 3)
	z.bits, z.nb = 0, 0
	if z.ip > len(z.in) {
		z.err = io.ErrUnexpectedEOF
		return false
	}
	return true
}

// corrupt fails with ErrCorrupt, or with io.ErrUnexpectedEOF where the bits that do not
// decode may include the zeros past the end: a complete stream has its trailer there.
func (z *Reader) corrupt() {
	if z.ip > len(z.in) {
		z.fail(io.ErrUnexpectedEOF)
		return
	}
	z.fail(ErrCorrupt)
}

func (z *Reader) fail(err error) {
	if z.err == nil {
		z.err = err
	}
}

// blockHeader reads a block header (RFC 1951, section 3.2.3) and, for a dynamic block,
// its code lengths.
func (z *Reader) blockHeader() {
	z.final = z.take(1) == 1
	typ := z.take(2)
	if z.overrun() {
		z.fail(io.ErrUnexpectedEOF)
		return
	}
	switch typ {
	case 0:
		if !z.align() {
			return
		}
		if len(z.in)-z.ip < 4 {
			z.fail(io.ErrUnexpectedEOF)
			return
		}
		n := binary.LittleEndian.Uint16(z.in[z.ip:])
		if n != ^binary.LittleEndian.Uint16(z.in[z.ip+2:]) {
			z.corrupt()
			return
		}
		z.ip += 4
		z.stored = int(n)
		z.state = stateStored
	case 1:
		z.lit, z.dist = fixedTables()
		z.state = stateHuff
	case 2:
		if z.dynamic() {
			z.lit, z.dist = z.dynLit, z.dynDist
			z.state = stateHuff
		}
	default:
		z.corrupt()
	}
}

// codeOrder is the order of the code length code's lengths (RFC 1951, section 3.2.7).
var codeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

var codeTemplate = func() (t [19]uint32) {
	for s := range t {
		t[s] = uint32(s) << 16
	}
	return t
}()

// dynamic reads the code lengths of a dynamic block and builds its tables.
func (z *Reader) dynamic() bool {
	nlit := int(z.take(5)) + 257
	ndist := int(z.take(5)) + 1
	nclen := int(z.take(4)) + 4
	if nlit > 286 || ndist > 30 {
		z.corrupt()
		return false
	}
	var clen [19]uint8
	for i := range nclen {
		clen[codeOrder[i]] = uint8(z.take(3))
	}
	var ct [1 << 7]uint32
	if z.overrun() {
		z.fail(io.ErrUnexpectedEOF)
		return false
	}
	if !build(ct[:], clen[:], codeTemplate[:], 7) {
		z.corrupt()
		return false
	}
	var lengths [286 + 30]uint8
	for i := 0; i < nlit+ndist; {
		z.refill()
		e := ct[z.bits&(1<<7-1)]
		if e&flagBad != 0 {
			z.corrupt()
			return false
		}
		n := uint(e & 0xff)
		z.bits >>= n
		z.nb -= n
		sym := e >> 16
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var val uint8
		switch sym {
		case 16:
			if i == 0 {
				z.corrupt()
				return false
			}
			rep, val = 3+int(z.take(2)), lengths[i-1]
		case 17:
			rep = 3 + int(z.take(3))
		default:
			rep = 11 + int(z.take(7))
		}
		if i+rep > nlit+ndist {
			z.corrupt()
			return false
		}
		for range rep {
			lengths[i] = val
			i++
		}
	}
	if z.overrun() {
		z.fail(io.ErrUnexpectedEOF)
		return false
	}
	if !build(z.dynLit, lengths[:nlit], litTemplate[:nlit], litBits) ||
		!build(z.dynDist, lengths[nlit:nlit+ndist], distTemplate[:ndist], distBits) {
		z.corrupt()
		return false
	}
	return true
}

// storedBytes copies the bytes of a stored block, up to lim.
func (z *Reader) storedBytes(lim int) {
	n := copy(z.buf[z.op:lim], z.in[z.ip:min(len(z.in), z.ip+z.stored)])
	z.op += n
	z.ip += n
	z.stored -= n
	if z.stored == 0 {
		z.endBlock()
	} else if z.ip == len(z.in) {
		z.fail(io.ErrUnexpectedEOF)
	}
}

func (z *Reader) endBlock() {
	if z.final {
		z.state = stateTrailer
	} else {
		z.state = stateHeader
	}
}

// huff decodes Huffman codes up to lim while eight input bytes remain to load: after a
// refill at least 56 bits are valid, enough for a length and a distance with their
// extra bits (48 at most), so the loop tests no bit count. It keeps its state in locals.
func (z *Reader) huff(lim int) {
	in, out := z.in, z.buf
	lit, dist := z.lit[:litTableSize], z.dist[:distTableSize]
	bits, nb, ip, op, base := z.bits, z.nb, z.ip, z.op, z.base
	var err error
loop:
	for op < lim && ip+8 <= len(in) {
		bits |= binary.LittleEndian.Uint64(in[ip:]) << nb
		ip += int(63-nb) >> 3
		nb |= 56

		e := lit[bits&(1<<litBits-1)]
		if e&flagLink != 0 {
			e = lit[uint(e>>16)+uint(bits>>litBits)&(1<<(e>>8&15)-1)]
		}
		if e&flagLit != 0 {
			// Up to three literals per refill: each takes 15 bits at most.
			for range 3 {
				n := uint(e & 0xff)
				bits >>= n
				nb -= n
				out[op] = byte(e >> 16)
				op++
				e = lit[bits&(1<<litBits-1)]
				if e&flagLink != 0 {
					e = lit[uint(e>>16)+uint(bits>>litBits)&(1<<(e>>8&15)-1)]
				}
				if e&flagLit == 0 {
					break
				}
			}
			continue
		}
		if e&(flagEOB|flagBad) != 0 {
			if e&flagBad != 0 {
				err = ErrCorrupt
				break loop
			}
			n := uint(e & 0xff)
			bits >>= n
			nb -= n
			z.endBlock()
			break loop
		}
		n := uint(e & 0xff)
		bits >>= n
		nb -= n
		ex := uint(e >> 8 & 15)
		length := int(e>>16) + int(bits&(1<<ex-1))
		bits >>= ex
		nb -= ex

		e = dist[bits&(1<<distBits-1)]
		if e&flagLink != 0 {
			e = dist[uint(e>>16)+uint(bits>>distBits)&(1<<(e>>8&15)-1)]
		}
		if e&flagBad != 0 {
			err = ErrCorrupt
			break loop
		}
		n = uint(e & 0xff)
		bits >>= n
		nb -= n
		ex = uint(e >> 8 & 15)
		d := int(e>>16) + int(bits&(1<<ex-1))
		bits >>= ex
		nb -= ex
		if d > op-base {
			err = ErrCorrupt // before the start of the member
			break loop
		}
		copyMatch(out, op, d, length)
		op += length
	}
	z.bits, z.nb, z.ip, z.op = bits, nb, ip, op
	if err != nil {
		z.fail(err)
	}
}

// copyMatch copies length bytes from d bytes back to out[op:]; it may write up to seven
// bytes past the match (slack), never read.
func copyMatch(out []byte, op, d, length int) {
	src := op - d
	if d >= 8 {
		_ = out[op+length+7]
		for i := 0; i < length; i += 8 {
			binary.LittleEndian.PutUint64(out[op+i:], binary.LittleEndian.Uint64(out[src+i:]))
		}
		return
	}
	if d == 1 {
		b := out[src]
		s := out[op : op+length]
		for i := range s {
			s[i] = b
		}
		return
	}
	for i := range length {
		out[op+i] = out[src+i]
	}
}

// sym decodes one symbol with table t, consuming its code and extra bits: it returns
// the entry and the value with the extra bits added. The slow path: it checks overrun.
func (z *Reader) sym(t []uint32, primary uint) (uint32, int, bool) {
	z.refill()
	e := t[z.bits&(1<<primary-1)]
	if e&flagLink != 0 {
		e = t[uint(e>>16)+uint(z.bits>>primary)&(1<<(e>>8&15)-1)]
	}
	if e&flagBad != 0 {
		z.corrupt()
		return 0, 0, false
	}
	n := uint(e & 0xff)
	z.bits >>= n
	z.nb -= n
	ex := uint(e >> 8 & 15)
	v := int(e>>16) + int(z.bits&(1<<ex-1))
	z.bits >>= ex
	z.nb -= ex
	if z.overrun() {
		z.fail(io.ErrUnexpectedEOF)
		return 0, 0, false
	}
	return e, v, true
}

// huffTail decodes the codes of the last input bytes, one symbol at a time.
func (z *Reader) huffTail(lim int) {
	for z.op < lim {
		e, v, ok := z.sym(z.lit, litBits)
		if !ok {
			return
		}
		switch {
		case e&flagLit != 0:
			z.buf[z.op] = byte(v)
			z.op++
			continue
		case e&flagEOB != 0:
			z.endBlock()
			return
		}
		_, d, ok := z.sym(z.dist, distBits)
		if !ok {
			return
		}
		if d > z.op-z.base {
			z.corrupt()
			return
		}
		copyMatch(z.buf, z.op, d, v)
		z.op += v
	}
}

// trailer checks the member's CRC-32 and size, then reads the next member's header, if
// there is one.
func (z *Reader) trailer() {
	z.sum()
	if !z.align() {
		return
	}
	if len(z.in)-z.ip < 8 {
		z.fail(io.ErrUnexpectedEOF)
		return
	}
	if binary.LittleEndian.Uint32(z.in[z.ip:]) != z.crc || binary.LittleEndian.Uint32(z.in[z.ip+4:]) != z.size {
		z.fail(gzip.ErrChecksum)
		return
	}
	z.ip += 8
	if z.ip == len(z.in) {
		z.state = stateEOF
		return
	}
	ip, err := header(z.in, z.ip)
	if err != nil {
		z.fail(err)
		return
	}
	z.ip, z.crc, z.size, z.state, z.base = ip, 0, 0, stateHeader, z.op
}
