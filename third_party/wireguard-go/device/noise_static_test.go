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
