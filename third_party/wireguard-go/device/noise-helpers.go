/* SPDX-License-Identifier: MIT
 *
 * Copyright (C) 2017-2025 WireGuard LLC. All Rights Reserved.
 */

package device

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/curve25519"
)

/* KDF related functions.
 * HMAC-based Key Derivation Function (HKDF)
 * https://tools.ietf.org/html/rfc5869
 */

func HMAC1(sum *[blake2s.Size]byte, key, in0 []byte) {
	mac := hmac.New(func() hash.Hash {
		h, _ := blake2s.New256(nil)
		return h
	}, key)
	mac.Write(in0)
	mac.Sum(sum[:0])
}

func HMAC2(sum *[blake2s.Size]byte, key, in0, in1 []byte) {
	mac := hmac.New(func() hash.Hash {
		h, _ := blake2s.New256(nil)
		return h
	}, key)
	mac.Write(in0)
	mac.Write(in1)
	mac.Sum(sum[:0])
}

func KDF1(t0 *[blake2s.Size]byte, key, input []byte) {
	HMAC1(t0, key, input)
	HMAC1(t0, t0[:], []byte{0x1})
}

func KDF2(t0, t1 *[blake2s.Size]byte, key, input []byte) {
	var prk [blake2s.Size]byte
	HMAC1(&prk, key, input)
	HMAC1(t0, prk[:], []byte{0x1})
	HMAC2(t1, prk[:], t0[:], []byte{0x2})
	setZero(prk[:])
}

func KDF3(t0, t1, t2 *[blake2s.Size]byte, key, input []byte) {
	var prk [blake2s.Size]byte
	HMAC1(&prk, key, input)
	HMAC1(t0, prk[:], []byte{0x1})
	HMAC2(t1, prk[:], t0[:], []byte{0x2})
	HMAC2(t2, prk[:], t1[:], []byte{0x3})
	setZero(prk[:])
}

func isZero(val []byte) bool {
	acc := 1
	for _, b := range val {
		acc &= subtle.ConstantTimeByteEq(b, 0)
	}
	return acc == 1
}

/* This function is not used as pervasively as it should because this is mostly impossible in Go at the moment */
func setZero(arr []byte) {
	for i := range arr {
		arr[i] = 0
	}
}

func (sk *NoisePrivateKey) clamp() {
	sk[0] &= 248
	sk[31] = (sk[31] & 127) | 64
}

func newPrivateKey() (sk NoisePrivateKey, err error) {
	_, err = rand.Read(sk[:])
	sk.clamp()
	return
}

func (sk *NoisePrivateKey) publicKey() (pk NoisePublicKey) {
	apk := (*[NoisePublicKeySize]byte)(&pk)
	ask := (*[NoisePrivateKeySize]byte)(sk)
	curve25519.ScalarBaseMult(apk, ask)
	return
}

var errInvalidPublicKey = errors.New("invalid public key")

func (sk *NoisePrivateKey) sharedSecret(pk NoisePublicKey) (ss [NoisePublicKeySize]byte, err error) {
	apk := (*[NoisePublicKeySize]byte)(&pk)
	ask := (*[NoisePrivateKeySize]byte)(sk)
	curve25519.ScalarMult(&ss, ask, apk)
	if isZero(ss[:]) {
		return ss, errInvalidPublicKey
	}
	return ss, nil
}

// ecdhKey parses sk for crypto/ecdh, or returns nil when crypto/ecdh refuses X25519 (FIPS
// 140-only mode). Wirefleet patch: since Go 1.20, x/crypto's curve25519.ScalarMult goes
// through crypto/ecdh, whose NewPrivateKey also derives the public key (a second scalar
// multiplication, thrown away) on every call; a key parsed once costs one per secret.
func (sk *NoisePrivateKey) ecdhKey() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey(sk[:])
	if err != nil {
		return nil
	}
	return k
}

// staticSharedSecret is device.staticIdentity.privateKey.sharedSecret(pk), with one scalar
// multiplication instead of two. The caller holds device.staticIdentity (read or write).
// Wirefleet patch.
func (device *Device) staticSharedSecret(pk NoisePublicKey) (ss [NoisePublicKeySize]byte, err error) {
	k := device.staticIdentity.ecdhKey
	if k == nil {
		return device.staticIdentity.privateKey.sharedSecret(pk)
	}
	pub, err := ecdh.X25519().NewPublicKey(pk[:])
	if err != nil {
		return ss, errInvalidPublicKey
	}
	b, err := k.ECDH(pub)
	if err != nil { // a low-order point: the all-zero secret, as sharedSecret reports it
		return ss, errInvalidPublicKey
	}
	copy(ss[:], b)
	return ss, nil
}

// staticStatic returns the static-static DH of the handshake's peer, computing it on first
// use after the peer was created or the device's key changed. The caller holds
// device.staticIdentity (read or write). A low-order peer key gives the all-zero secret,
// which callers refuse, as they did with the precomputed one. Wirefleet patch.
func (device *Device) staticStatic(h *Handshake) [NoisePublicKeySize]byte {
	h.precomputeMu.Lock()
	defer h.precomputeMu.Unlock()
	if !h.precomputed {
		h.precomputedStaticStatic, _ = device.staticSharedSecret(h.remoteStatic)
		h.precomputed = true
	}
	return h.precomputedStaticStatic
}

// forgetStaticStatic drops the static-static DH (the device's key changed). Wirefleet patch.
func (h *Handshake) forgetStaticStatic() {
	h.precomputeMu.Lock()
	defer h.precomputeMu.Unlock()
	h.precomputedStaticStatic = [NoisePublicKeySize]byte{}
	h.precomputed = false
}
