/* SPDX-License-Identifier: MIT
 *
 * Wirefleet patch test: staticSharedSecret must equal sharedSecret.
 */

package device

import "testing"

func TestStaticSharedSecretMatches(t *testing.T) {
	dev := randDevice(t)
	defer dev.Close()
	for i := 0; i < 32; i++ {
		sk, err := newPrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		pk := sk.publicKey()
		dev.staticIdentity.RLock()
		got, gotErr := dev.staticSharedSecret(pk)
		want, wantErr := dev.staticIdentity.privateKey.sharedSecret(pk)
		dev.staticIdentity.RUnlock()
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("key %d: staticSharedSecret = %x, %v; sharedSecret = %x, %v", i, got, gotErr, want, wantErr)
		}
	}
	// A low-order point gives the all-zero secret and an error, as before.
	var low NoisePublicKey // the zero point
	dev.staticIdentity.RLock()
	got, err := dev.staticSharedSecret(low)
	dev.staticIdentity.RUnlock()
	if err == nil || got != (NoisePublicKey{}) {
		t.Fatalf("low-order point: %x, %v; want zero secret and an error", got, err)
	}
	if dev.staticIdentity.ecdhKey == nil {
		t.Fatal("SetPrivateKey did not parse the key for crypto/ecdh")
	}
}

// The static-static DH is computed on first use and recomputed after a key change.
func TestStaticStaticOnFirstUse(t *testing.T) {
	dev := randDevice(t)
	defer dev.Close()
	sk, err := newPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := dev.NewPeer(sk.publicKey())
	if err != nil {
		t.Fatal(err)
	}
	if peer.handshake.precomputed {
		t.Fatal("NewPeer computed the static-static DH; it should wait for the first handshake")
	}
	want, _ := dev.staticIdentity.privateKey.sharedSecret(sk.publicKey())
	dev.staticIdentity.RLock()
	got := dev.staticStatic(&peer.handshake)
	dev.staticIdentity.RUnlock()
	if got != want {
		t.Fatalf("staticStatic = %x, want %x", got, want)
	}

	newKey, err := newPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetPrivateKey(newKey); err != nil {
		t.Fatal(err)
	}
	want2, _ := newKey.sharedSecret(sk.publicKey())
	dev.staticIdentity.RLock()
	got2 := dev.staticStatic(&peer.handshake)
	dev.staticIdentity.RUnlock()
	if got2 != want2 || got2 == got {
		t.Fatalf("after a key change staticStatic = %x, want %x", got2, want2)
	}
}
