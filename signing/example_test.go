package signing_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/google/uuid"

	"github.com/hookline/hookline/signing"
)

// The sender signs each attempt with both schemes. The message id and
// timestamp are arguments, so the headers are deterministic.
func ExampleSigner_Sign() {
	secret, err := signing.NewSecret(uuid.MustParse("0190a5b4-0000-7000-8000-00000000000a"),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	ring, err := signing.NewKeyRing(secret)
	if err != nil {
		panic(err)
	}
	signer, err := signing.NewSigner(signing.SignerConfig{
		Keys:    ring,
		Schemes: signing.SchemeHex | signing.SchemeStandard,
		Prefix:  "Runflow",
	})
	if err != nil {
		panic(err)
	}

	body := []byte(`{"test": 2432232314}`)
	h := http.Header{}
	err = signer.Sign(h, "msg_p5jXN8AQM9LWM0D4loKWxJek",
		uuid.MustParse("0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f"), time.Unix(1614265330, 0), body)
	if err != nil {
		panic(err)
	}
	for _, k := range []string{"Runflow-Signature", "Runflow-Request-Id", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		fmt.Printf("%s: %s\n", k, h.Get(k))
	}
	// Output:
	// Runflow-Signature: 80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c
	// Runflow-Request-Id: 0190a5b4-7c1e-7d1a-9b7e-3c1f0c2d4e5f
	// Webhook-Id: msg_p5jXN8AQM9LWM0D4loKWxJek
	// Webhook-Timestamp: 1614265330
	// Webhook-Signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

// The receiver wraps its handler; only verified requests reach it, with
// the exact bytes that were signed.
func ExampleVerifier_Middleware() {
	secret, err := signing.NewSecret(uuid.Nil, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	verifier, err := signing.NewVerifier(signing.VerifierConfig{
		Secrets: []signing.Secret{secret},
		// A fixed clock, so the published example's timestamp is current.
		Now: func() time.Time { return time.Unix(1614265330, 0) },
	})
	if err != nil {
		panic(err)
	}
	handler := verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		vd, _ := signing.VerifiedFromContext(r.Context())
		fmt.Printf("handler got %s from message %s\n", body, vd.MessageID)
	}))
	srv := httptest.NewServer(handler)
	defer srv.Close()

	post := func(signature string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader([]byte(`{"test": 2432232314}`)))
		if err != nil {
			panic(err)
		}
		req.Header.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
		req.Header.Set("webhook-timestamp", "1614265330")
		req.Header.Set("webhook-signature", signature)
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	post("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	post("v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	// Output:
	// handler got {"test": 2432232314} from message msg_p5jXN8AQM9LWM0D4loKWxJek
	// 200 OK
	// 401 Unauthorized
}

// Secrets print their id only, in every format.
func ExampleSecret_String() {
	secret, err := signing.NewSecret(uuid.MustParse("0190a5b4-0000-7000-8000-00000000000a"),
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		panic(err)
	}
	fmt.Println(secret)
	fmt.Printf("%#v\n", secret)
	// Output:
	// Secret{ID:0190a5b4-0000-7000-8000-00000000000a Key:[redacted]}
	// signing.Secret{ID:"0190a5b4-0000-7000-8000-00000000000a", Key:"[redacted]"}
}
