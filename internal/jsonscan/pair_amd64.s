//go:build amd64 && !purego

#include "textflag.h"

// func indexPairBlocks(b []byte, c0, c1 byte) int
//
// The index of the first c0 followed by c1 among the pairs that start in the whole
// 16-byte blocks of b whose 17th byte is in b too, or -1: 16 positions per iteration with
// SSE2 (every amd64 has it). IndexPair tests the positions after those blocks.
TEXT ·indexPairBlocks(SB), NOSPLIT, $0-40
	MOVQ   b_base+0(FP), SI
	MOVQ   b_len+8(FP), BX
	MOVQ   SI, DI
	MOVQ   $0x0101010101010101, CX
	MOVBQZX c0+24(FP), AX
	IMULQ  CX, AX
	MOVQ   AX, X1
	PUNPCKLQDQ X1, X1 // c0 in every byte
	MOVBQZX c1+25(FP), AX
	IMULQ  CX, AX
	MOVQ   AX, X2
	PUNPCKLQDQ X2, X2 // c1 in every byte
	CMPQ   BX, $17
	JB     none
	LEAQ   -16(SI)(BX*1), R8 // a block at SI needs SI+17 <= end, that is SI < end-16

loop:
	MOVOU    (SI), X3
	MOVOU    1(SI), X4
	PCMPEQB  X1, X3
	PCMPEQB  X2, X4
	PAND     X4, X3
	PMOVMSKB X3, DX
	TESTL    DX, DX
	JNZ      found
	ADDQ     $16, SI
	CMPQ     SI, R8
	JB       loop

none:
	MOVQ $-1, ret+32(FP)
	RET

found:
	BSFL DX, DX
	ADDQ DX, SI
	SUBQ DI, SI
	MOVQ SI, ret+32(FP)
	RET
