"""Regenerate the TEST-ONLY key pairs in this folder (never use them anywhere else).

Run: .venv/bin/python tests/security/keys/generate.py
Writes <name>.private.pem and a public JWK Set <name>.jwks.json (kid = name) for each key.
"""
from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

HERE = Path(__file__).resolve().parent
KEYS = {
    "test-es384-a": lambda: ec.generate_private_key(ec.SECP384R1()),
    "test-es384-b": lambda: ec.generate_private_key(ec.SECP384R1()),
    "test-rs384-a": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def main() -> None:
    for kid, make in KEYS.items():
        key = make()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (HERE / f"{kid}.private.pem").write_bytes(pem)
        algo = ECAlgorithm if kid.startswith("test-es") else RSAAlgorithm
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk.update(kid=kid, use="sig", alg="ES384" if kid.startswith("test-es") else "RS384")
        (HERE / f"{kid}.jwks.json").write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
