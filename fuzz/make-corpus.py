#!/usr/bin/env python3
"""Writes the seed corpus of Cachet's fuzz targets from specs/vectors/ (Python 3, stdlib only).

    python3 fuzz/make-corpus.py [--clean]

Writes one file per seed, named after its vector, into fuzz/corpus/<target>/. Files already
there that this script does not write (crash reproducers you added) are kept unless --clean
is given, which empties each target's directory first.

Binary seeds are built with the canonical codec (specs/encoding.md): a format version byte
(1) once at the start, then bincode with fixed-width big-endian integers: u64 length before
every string, byte string and sequence, u32 enum variant index, one byte before an Option.
The script checks its encoder against the golden encodings before writing anything.

The key file seed is sealed for real (argon2id, ChaCha20-Poly1305, Ed25519 and bech32m are
implemented below and checked against their RFC / BIP test vectors first), under the
passphrase the keystore target uses, so the fuzzer starts from a file that opens.
"""

import hashlib
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VECTORS = os.path.join(ROOT, "specs", "vectors")
CORPUS = os.path.join(HERE, "corpus")

# Must match fuzz_targets/keystore.rs.
KEYSTORE_PASSPHRASE = "cachet-fuzz-passphrase"

# Every target with a corpus directory (must match fuzz/Cargo.toml).
TARGETS = [
    "tx", "block", "header", "certificate", "certified_block", "consensus_msg", "tx_batch",
    "sync", "genesis", "bundle", "supply_proof", "keystore", "api_bodies", "signer_files",
]


def fail(message):
    sys.exit(f"make-corpus: {message}")


# --------------------------------------------------------------------------------------------
# The canonical codec (bincode 2, fixed-width big-endian, behind one version byte).

VERSION = b"\x01"


def u8(n):
    return struct.pack(">B", n)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def u64(n):
    return struct.pack(">Q", n)


def text(s):
    b = s.encode("utf-8")
    return u64(len(b)) + b


def byte_string(b):
    return u64(len(b)) + b


def seq(items):
    return u64(len(items)) + b"".join(items)


def option(encoded):
    return b"\x00" if encoded is None else b"\x01" + encoded


def variant(index):
    return u32(index)


def fixed(hex_text, size):
    b = bytes.fromhex(hex_text)
    if len(b) != size:
        fail(f"expected {size} bytes of hex, got {hex_text!r}")
    return b


def body(encoding):
    """An encoding without its version byte (as nested inside another value)."""
    if encoding[:1] != VERSION:
        fail("an encoding does not start with the format version byte")
    return encoding[1:]


def enc_operator(op):
    return (text(op["id"]) + text(op["country"]) + text(op["name"])
            + fixed(op["validator_key"], 32) + fixed(op["node_key"], 32)
            + address_bytes(op["issuer"]))


def enc_genesis(g):
    p = g["params"]
    return VERSION + (
        text(g["chain_name"]) + u64(g["genesis_time_ms"])
        + seq([enc_operator(op) for op in g["operators"]])
        + u32(p["max_block_txs"]) + u32(p["max_block_bytes"]) + u32(p["max_tx_bytes"])
        + u32(p["max_mint_per_tx"]) + u32(p["max_print_run"]))


def enc_header(h):
    return VERSION + (
        fixed(h["chain_id"], 32) + u64(h["height"]) + fixed(h["prev_hash"], 32)
        + u64(h["time_ms"]) + u16(h["proposer"]) + u32(h["tx_count"])
        + fixed(h["tx_root"], 32) + fixed(h["state_root"], 32))


def enc_certificate(c):
    return VERSION + (
        u64(c["height"]) + u32(c["round"]) + fixed(c["block_hash"], 32)
        + seq([u16(s["validator"]) + fixed(s["signature"], 64) for s in c["signatures"]]))


# --------------------------------------------------------------------------------------------
# CBOR, as cbor4ii's serde serializer writes it (structs as maps with text keys).

def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    fail("CBOR length too large")


def cbor_uint(n):
    return cbor_head(0, n)


def cbor_bytes(b):
    return cbor_head(2, len(b)) + b


def cbor_text(s):
    b = s.encode("utf-8")
    return cbor_head(3, len(b)) + b


def cbor_array(items):
    return cbor_head(4, len(items)) + b"".join(items)


def cbor_map(pairs):
    return cbor_head(5, len(pairs)) + b"".join(cbor_text(k) + v for k, v in pairs)


# --------------------------------------------------------------------------------------------
# bech32m (BIP 350), for addresses.

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3


def bech32_polymod(values):
    generators = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= generators[i]
    return chk


def bech32_hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def convert_bits(data, from_bits, to_bits, pad):
    acc, bits, out, maxv = 0, 0, [], (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        raise ValueError("invalid padding")
    return out


def bech32m_encode(hrp, data):
    words = convert_bits(data, 8, 5, True)
    pm = bech32_polymod(bech32_hrp_expand(hrp) + words + [0] * 6) ^ BECH32M_CONST
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[w] for w in words + checksum)


def bech32m_decode(address):
    pos = address.rfind("1")
    hrp, words = address[:pos], [BECH32_CHARSET.index(c) for c in address[pos + 1:]]
    if bech32_polymod(bech32_hrp_expand(hrp) + words) != BECH32M_CONST:
        fail(f"bad bech32m checksum in {address}")
    return hrp, bytes(convert_bits(words[:-6], 5, 8, False))


def address_bytes(address):
    hrp, key = bech32m_decode(address)
    if hrp != "cachet" or len(key) != 32:
        fail(f"not a Cachet address: {address}")
    return key


# --------------------------------------------------------------------------------------------
# Ed25519 public key from a seed (RFC 8032).

ED_P = 2 ** 255 - 19
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P


def _ed_x(y, sign):
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P:
        x = x * pow(2, (ED_P - 1) // 4, ED_P) % ED_P
    if x % 2 != sign:
        x = ED_P - x
    return x


_ED_GY = 4 * pow(5, ED_P - 2, ED_P) % ED_P
_ED_GX = _ed_x(_ED_GY, 0)
ED_BASE = (_ED_GX, _ED_GY, 1, _ED_GX * _ED_GY % ED_P)


def _ed_add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % ED_P
    b = (y1 + x1) * (y2 + x2) % ED_P
    c = t1 * 2 * ED_D * t2 % ED_P
    d = z1 * 2 * z2 % ED_P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % ED_P, g * h % ED_P, f * g % ED_P, e * h % ED_P)


def _ed_mul(s, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _ed_add(q, p)
        p = _ed_add(p, p)
        s >>= 1
    return q


def ed25519_public_key(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    x, y, z, _ = _ed_mul(a, ED_BASE)
    zi = pow(z, ED_P - 2, ED_P)
    x, y = x * zi % ED_P, y * zi % ED_P
    return (y | (x & 1) << 255).to_bytes(32, "little")


# --------------------------------------------------------------------------------------------
# ChaCha20-Poly1305 (RFC 8439).

M32 = 0xFFFFFFFF


def _rotl32(x, n):
    return ((x << n) | (x >> (32 - n))) & M32


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl32(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl32(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl32(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl32(s[b] ^ s[c], 7)


def chacha20_block(key, counter, nonce):
    state = ([0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + list(struct.unpack("<8I", key))
             + [counter] + list(struct.unpack("<3I", nonce)))
    w = list(state)
    for _ in range(10):
        _quarter(w, 0, 4, 8, 12)
        _quarter(w, 1, 5, 9, 13)
        _quarter(w, 2, 6, 10, 14)
        _quarter(w, 3, 7, 11, 15)
        _quarter(w, 0, 5, 10, 15)
        _quarter(w, 1, 6, 11, 12)
        _quarter(w, 2, 7, 8, 13)
        _quarter(w, 3, 4, 9, 14)
    return struct.pack("<16I", *[(a + b) & M32 for a, b in zip(w, state)])


def chacha20(key, counter, nonce, data):
    out = bytearray()
    for i in range(0, len(data), 64):
        stream = chacha20_block(key, counter + i // 64, nonce)
        out += bytes(x ^ y for x, y in zip(data[i:i + 64], stream))
    return bytes(out)


def poly1305(key, message):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:32], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(message), 16):
        acc = (acc + int.from_bytes(message[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def chacha20poly1305_seal(key, nonce, plaintext, aad):
    """Ciphertext with the 16-byte tag appended (as RustCrypto's `Aead::encrypt`)."""
    one_time_key = chacha20_block(key, 0, nonce)[:32]
    ciphertext = chacha20(key, 1, nonce, plaintext)

    def pad(b):
        return b"\x00" * (-len(b) % 16)

    mac_data = aad + pad(aad) + ciphertext + pad(ciphertext) + struct.pack("<QQ", len(aad), len(ciphertext))
    return ciphertext + poly1305(one_time_key, mac_data)


# --------------------------------------------------------------------------------------------
# Argon2id, version 0x13 (RFC 9106).

M64 = (1 << 64) - 1


def _rotr64(x, n):
    return ((x >> n) | (x << (64 - n))) & M64


def _blamka(a, b):
    return (a + b + 2 * (a & M32) * (b & M32)) & M64


def _gb(v, a, b, c, d):
    v[a] = _blamka(v[a], v[b])
    v[d] = _rotr64(v[d] ^ v[a], 32)
    v[c] = _blamka(v[c], v[d])
    v[b] = _rotr64(v[b] ^ v[c], 24)
    v[a] = _blamka(v[a], v[b])
    v[d] = _rotr64(v[d] ^ v[a], 16)
    v[c] = _blamka(v[c], v[d])
    v[b] = _rotr64(v[b] ^ v[c], 63)


def _permute(block, indices):
    v = [block[i] for i in indices]
    _gb(v, 0, 4, 8, 12)
    _gb(v, 1, 5, 9, 13)
    _gb(v, 2, 6, 10, 14)
    _gb(v, 3, 7, 11, 15)
    _gb(v, 0, 5, 10, 15)
    _gb(v, 1, 6, 11, 12)
    _gb(v, 2, 7, 8, 13)
    _gb(v, 3, 4, 9, 14)
    for k, i in enumerate(indices):
        block[i] = v[k]


_ROWS = [list(range(16 * i, 16 * i + 16)) for i in range(8)]
_COLUMNS = [[2 * i + 16 * k + e for k in range(8) for e in (0, 1)] for i in range(8)]


def _compress(x, y, old=None):
    r = [a ^ b for a, b in zip(x, y)]
    q = list(r)
    for indices in _ROWS:
        _permute(q, indices)
    for indices in _COLUMNS:
        _permute(q, indices)
    out = [a ^ b for a, b in zip(q, r)]
    if old is not None:
        out = [a ^ b for a, b in zip(out, old)]
    return out


def _blake2b(data, size):
    return hashlib.blake2b(data, digest_size=size).digest()


def _h_prime(data, size):
    data = struct.pack("<I", size) + data
    if size <= 64:
        return _blake2b(data, size)
    r = (size + 31) // 32 - 2
    v = _blake2b(data, 64)
    out = v[:32]
    for _ in range(r - 1):
        v = _blake2b(v, 64)
        out += v[:32]
    return out + _blake2b(v, size - 32 * r)


def _words(block_bytes):
    return list(struct.unpack("<128Q", block_bytes))


def argon2id(password, salt, t_cost, m_cost, lanes, tag_len=32, secret=b"", associated=b""):
    h0 = _blake2b(
        struct.pack("<6I", lanes, tag_len, m_cost, t_cost, 0x13, 2)
        + struct.pack("<I", len(password)) + password
        + struct.pack("<I", len(salt)) + salt
        + struct.pack("<I", len(secret)) + secret
        + struct.pack("<I", len(associated)) + associated, 64)
    blocks = 4 * lanes * (m_cost // (4 * lanes))
    q = blocks // lanes
    segment = q // 4
    memory = [[None] * q for _ in range(lanes)]
    for lane in range(lanes):
        memory[lane][0] = _words(_h_prime(h0 + struct.pack("<II", 0, lane), 1024))
        memory[lane][1] = _words(_h_prime(h0 + struct.pack("<II", 1, lane), 1024))
    zero = [0] * 128
    for r in range(t_cost):
        for s in range(4):
            for lane in range(lanes):
                independent = r == 0 and s < 2
                start = 2 if (r == 0 and s == 0) else 0
                address_input = address_block = None
                if independent:
                    address_input = [0] * 128
                    address_input[:6] = [r, lane, s, blocks, t_cost, 2]
                    if start == 2:
                        address_input[6] += 1
                        address_block = _compress(zero, _compress(zero, address_input))
                for i in range(start, segment):
                    column = s * segment + i
                    previous = column - 1 if column > 0 else q - 1
                    if independent:
                        if i % 128 == 0:
                            address_input[6] += 1
                            address_block = _compress(zero, _compress(zero, address_input))
                        pseudo = address_block[i % 128]
                    else:
                        pseudo = memory[lane][previous][0]
                    ref_lane = lane if (r == 0 and s == 0) else (pseudo >> 32) % lanes
                    same_lane = ref_lane == lane
                    if r == 0:
                        if s == 0:
                            area = i - 1
                        elif same_lane:
                            area = s * segment + i - 1
                        else:
                            area = s * segment + (-1 if i == 0 else 0)
                    elif same_lane:
                        area = q - segment + i - 1
                    else:
                        area = q - segment + (-1 if i == 0 else 0)
                    j1 = pseudo & M32
                    relative = (j1 * j1) >> 32
                    relative = area - 1 - ((area * relative) >> 32)
                    start_position = 0 if (r == 0 or s == 3) else (s + 1) * segment
                    ref_column = (start_position + relative) % q
                    memory[lane][column] = _compress(
                        memory[lane][previous], memory[ref_lane][ref_column],
                        memory[lane][column] if r > 0 else None)
    final = memory[0][q - 1]
    for lane in range(1, lanes):
        final = [a ^ b for a, b in zip(final, memory[lane][q - 1])]
    return _h_prime(struct.pack("<128Q", *final), tag_len)


def crypto_self_test(golden):
    """The primitives against their published test vectors; False if any differs."""
    ok = True
    # RFC 8032, 7.1, test 1.
    pub = ed25519_public_key(bytes.fromhex(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
    ok &= pub.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    # RFC 8439, 2.8.2.
    plaintext = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one "
                 b"tip for the future, sunscreen would be it.")
    sealed = chacha20poly1305_seal(bytes(range(0x80, 0xA0)),
                                   bytes.fromhex("070000004041424344454647"), plaintext,
                                   bytes.fromhex("50515253c0c1c2c3c4c5c6c7"))
    ok &= sealed[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"
    ok &= sealed[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691"
    # RFC 9106, 5.3 (Argon2id).
    tag = argon2id(b"\x01" * 32, b"\x02" * 16, 3, 32, 4, 32, b"\x03" * 8, b"\x04" * 12)
    ok &= tag.hex() == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    # bech32m: the golden swap's counterparty is its cosigner.
    swap = golden["tx_swap"]["json"]
    ok &= bech32m_encode("cachet", bytes.fromhex(swap["cosignatures"][0]["signer"])) == swap["body"]["counterparty"]
    return bool(ok)


# --------------------------------------------------------------------------------------------
# Writing.

written = {}


def write(target, name, data):
    if target not in TARGETS:
        fail(f"unknown target {target}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > 1024 * 1024:
        fail(f"seed {target}/{name} is over the fuzzers' 1 MiB max_len")
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)
    written[target] = written.get(target, 0) + 1


def to_json(value):
    return json.dumps(value, indent=2) + "\n"


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def main():
    clean = "--clean" in sys.argv[1:]
    unknown = [a for a in sys.argv[1:] if a != "--clean"]
    if unknown:
        fail(f"unknown arguments {unknown} (usage: make-corpus.py [--clean])")

    golden = load("golden.json")
    genesis4 = load("genesis-4-operators.json")
    with open(os.path.join(VECTORS, "bundle-AT-2026-001-42.json"), encoding="utf-8") as f:
        bundle_text = f.read()
    bundle = json.loads(bundle_text)

    def enc(name):
        return bytes.fromhex(golden[name]["encoding"])

    # Check the encoder against the golden encodings first.
    if enc_genesis(golden["genesis"]["json"]) != enc("genesis"):
        fail("the genesis encoder disagrees with golden.json")
    if enc_header(golden["block_header"]["json"]) != enc("block_header"):
        fail("the header encoder disagrees with golden.json")
    if enc_certificate(golden["precommit"]["certificate"]) != enc("precommit"):
        fail("the certificate encoder disagrees with golden.json")

    if clean:
        for target in TARGETS:
            shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)

    txs = {name: enc(name) for name in sorted(golden) if name.startswith("tx_") and "encoding" in golden[name]}
    if not txs:
        fail("golden.json holds no transactions")

    # tx: every transaction kind.
    for name, data in txs.items():
        write("tx", name, data)

    # header, certificate.
    header = enc("block_header")
    certificate = enc("precommit")
    write("header", "block_header", header)
    write("certificate", "precommit", certificate)

    # block: the golden height-1 block (its header and the three transactions of tx_root_3,
    # in order), and one carrying every transaction kind.
    by_witness = {golden[name]["witness_hash"]: name for name in txs}
    block_tx_names = [by_witness[w] for w in golden["tx_root_3"]["witness_hashes"]]
    block1 = VERSION + body(header) + seq([body(txs[n]) for n in block_tx_names])
    block_all = VERSION + body(header) + seq([body(t) for t in txs.values()])
    write("block", "block_1", block1)
    write("block", "block_all_kinds", block_all)

    # certified_block: block 1 with its certificate.
    certified1 = block1 + body(certificate)
    write("certified_block", "certified_block_1", certified1)

    # consensus_msg: the golden precommit as a signed vote (a vote signs the same bytes as a
    # certificate), and a proposal of block 1 (unsigned: zero signature), each bare and in
    # the gossip envelope (u64 clock first).
    cert_json = golden["precommit"]["certificate"]
    header_hash = fixed(golden["block_header"]["hash"], 32)
    vote = (variant(1) + u64(cert_json["height"]) + u32(cert_json["round"])  # Precommit
            + option(header_hash) + u16(cert_json["signatures"][0]["validator"]))
    signed_vote = vote + fixed(cert_json["signatures"][0]["signature"], 64)
    msg_vote = variant(1) + signed_vote
    proposal = u64(1) + u32(0) + header_hash + option(None) + u16(0)
    msg_proposal = variant(0) + proposal + bytes(64) + body(block1)
    sent_ms = golden["block_header"]["json"]["time_ms"]
    write("consensus_msg", "vote_precommit", VERSION + msg_vote)
    write("consensus_msg", "vote_precommit_envelope", VERSION + u64(sent_ms) + msg_vote)
    write("consensus_msg", "proposal_block_1", VERSION + msg_proposal)
    write("consensus_msg", "proposal_block_1_envelope", VERSION + u64(sent_ms) + msg_proposal)

    # tx_batch: envelopes of one, all and no transactions (items are whole encodings).
    def batch(items):
        return VERSION + u64(sent_ms) + seq([byte_string(t) for t in items])

    write("tx_batch", "batch_tx_mint", batch([txs["tx_mint"]]))
    write("tx_batch", "batch_all_kinds", batch(list(txs.values())))
    write("tx_batch", "batch_empty", batch([]))

    # signer_files: a signer state after a precommit, holding its lock proof; the default
    # state; a lock proof alone.
    prevote = variant(0) + vote[4:] + fixed(cert_json["signatures"][0]["signature"], 64)
    lock_proof = body(block1) + seq([prevote])
    state = (u64(1) + u32(0) + u8(3) + option(u32(0) + header_hash)
             + seq([signed_vote]) + option(lock_proof))
    write("signer_files", "signer_state_locked", VERSION + state)
    write("signer_files", "signer_state_default",
          VERSION + u64(0) + u32(0) + u8(0) + option(None) + seq([]) + option(None))
    write("signer_files", "lock_proof", VERSION + lock_proof)

    # sync: a request, a response with block 1, an empty response (CBOR, as the codec).
    write("sync", "request", cbor_map([("from_height", cbor_uint(1)), ("max", cbor_uint(32))]))
    write("sync", "response_block_1", cbor_map([("blocks", cbor_array([cbor_bytes(certified1)]))]))
    write("sync", "response_empty", cbor_map([("blocks", cbor_array([]))]))

    # genesis: both golden genesis files in both forms.
    write("genesis", "genesis", enc("genesis"))
    write("genesis", "genesis.json", to_json(golden["genesis"]["json"]))
    write("genesis", "genesis-4-operators", enc_genesis(genesis4))
    with open(os.path.join(VECTORS, "genesis-4-operators.json"), encoding="utf-8") as f:
        write("genesis", "genesis-4-operators.json", f.read())

    # bundle: the golden bundle (verifies against genesis-4-operators), and the same without
    # its optional membership proof.
    write("bundle", "bundle-AT-2026-001-42.json", bundle_text)
    bare = {k: v for k, v in bundle.items() if k != "membership"}
    write("bundle", "bundle-AT-2026-001-42-no-membership.json", to_json(bare))

    # supply_proof: built from the bundle's parts (its proof is for another key, so it does
    # not verify, but every field parses).
    record = bundle["issue"]["tx"]["body"]["record"]
    issue_state = {
        "record": record, "closed": False, "created_height": bundle["issue"]["height"],
        "minted": record["print_run"], "redeemed": 0, "frozen": 0, "burned": 0,
        "variant_minted": [0] * len(record["variants"]),
        "co_issuer_minted": [0] * len(record["co_issuers"]),
    }
    supply = {
        "format": "cachet-supply-proof", "version": 1, "chain_id": bundle["chain_id"],
        "issue": issue_state, "header": bundle["headers"][-1],
        "proof": bundle["current"]["proof"], "membership": {"changes": [], "headers": []},
    }
    write("supply_proof", "supply-AT-2026-001.json", to_json(supply))
    write("supply_proof", "supply-AT-2026-001-no-membership.json",
          to_json({k: v for k, v in supply.items() if k != "membership"}))

    # keystore: a real key file with tiny KDF settings sealed under the target's passphrase,
    # one whose ciphertext was altered, and one with hostile KDF settings.
    kdf = {"memory_kib": 8, "iterations": 1, "parallelism": 1}
    seed = hashlib.sha256(b"cachet-fuzz keystore seed").digest()
    salt = hashlib.sha256(b"cachet-fuzz keystore salt").digest()[:16]
    nonce = hashlib.sha256(b"cachet-fuzz keystore nonce").digest()[:12]
    if crypto_self_test(golden):
        public_key = ed25519_public_key(seed)
        key = argon2id(KEYSTORE_PASSPHRASE.encode(), salt, kdf["iterations"], kdf["memory_kib"],
                       kdf["parallelism"])
        ciphertext = chacha20poly1305_seal(key, nonce, seed, public_key)
    else:
        print("make-corpus: warning: a crypto self-test failed; the key file seeds will not open",
              file=sys.stderr)
        public_key = bytes.fromhex(golden["tx_mint"]["json"]["signer"])
        ciphertext = bytes(48)
    keyfile = {
        "kind": "cachet-keystore", "version": 1, "public_key": public_key.hex(),
        "address": bech32m_encode("cachet", public_key), "kdf": kdf,
        "salt": salt.hex(), "nonce": nonce.hex(), "ciphertext": ciphertext.hex(),
    }
    write("keystore", "key", to_json(keyfile))
    altered = dict(keyfile, ciphertext=bytes([ciphertext[0] ^ 1]).hex() + ciphertext[1:].hex())
    write("keystore", "key-altered", to_json(altered))
    hostile = dict(keyfile, kdf={"memory_kib": 4294967295, "iterations": 4294967295, "parallelism": 1})
    write("keystore", "key-hostile-kdf", to_json(hostile))

    # api_bodies: the request body and one answer of each shape.
    g = golden["genesis"]["json"]
    h = golden["block_header"]["json"]
    mint = golden["tx_mint"]
    operator = g["operators"][0]
    owner = mint["json"]["body"]["owner"]
    stamp = bundle["stamp"]
    propose = golden["tx_propose_membership_add_operator"]
    write("api_bodies", "submit_tx.json", to_json({"tx": mint["encoding"]}))
    write("api_bodies", "tx_info_final.json", to_json({
        "tx_id": mint["tx_id"], "status": "final", "height": 1, "index": 1, "tx": mint["json"]}))
    write("api_bodies", "tx_info_rejected.json", to_json({
        "tx_id": mint["tx_id"], "status": "rejected", "reason": "not_owner",
        "message": "the signer does not own the stamp"}))
    write("api_bodies", "error_body.json", to_json({
        "error": {"code": "not_found", "message": "no such stamp"}}))
    write("api_bodies", "chain_info.json", to_json({
        "chain_id": golden["genesis"]["chain_id"], "chain_name": g["chain_name"], "height": 1,
        "tip_hash": golden["block_header"]["hash"], "state_root": h["state_root"],
        "time_ms": h["time_ms"], "operators": g["operators"], "params": g["params"],
        "metrics": {"mempool_size": 0, "txs_final": 3, "txs_rejected": 0, "blocks_committed": 1,
                    "peers": 0, "operator_peers": 0, "consensus_round": 0, "role": "validator 0"},
        "version": "0.1.0"}))
    write("api_bodies", "block_info.json", to_json({
        "hash": golden["block_header"]["hash"], "header": h, "tx_ids": [golden[n]["tx_id"] for n in block_tx_names],
        "certificate": cert_json}))
    write("api_bodies", "stamp_info.json", to_json({
        "stamp": stamp, "owner": bundle["current"]["record"]["owner"], "status": "frozen",
        "reason": "stolen", "case_ref": "POL-2026-118",
        "last_event": bundle["current"]["record"]["last_event"], "event_count": 7}))
    write("api_bodies", "history_page.json", to_json({
        "stamp": golden["event_hash"]["stamp"], "events": [{
            "seq": 0, "kind": "minted", "owner": owner,
            "event_hash": golden["event_hash"]["event_hash"],
            "prev_event": golden["event_hash"]["prev_event"],
            "tx_id": golden["event_hash"]["tx_id"], "signer": operator["issuer"], "height": 1,
            "time_ms": h["time_ms"]}, {
            "seq": 1, "kind": "approved", "operator": owner, "until": {"height": 10},
            "event_hash": golden["event_hash"]["event_hash"],
            "prev_event": golden["event_hash"]["event_hash"],
            "tx_id": golden["tx_approve"]["tx_id"], "signer": owner, "height": 2,
            "time_ms": h["time_ms"] + 1000}],
        "next": 2}))
    write("api_bodies", "holdings_page.json", to_json({
        "owner": owner, "stamps": [stamp, golden["event_hash"]["stamp"]], "next": None}))
    write("api_bodies", "account_info.json", to_json({
        "address": operator["issuer"], "public_key": address_bytes(operator["issuer"]).hex(),
        "nonce": 2, "next_nonce": 3, "operator": operator["id"]}))
    write("api_bodies", "issue_info.json", to_json(issue_state))
    write("api_bodies", "membership_info.json", to_json({
        "height": 1, "operators": g["operators"], "scheduled": None, "changes": [{
            "proposal": propose["tx_id"], "change": propose["json"]["body"]["change"],
            "proposer": operator["id"], "approvals": [operator["id"]], "approval_txs": [],
            "decided_height": 1,
            "activation_height": propose["json"]["body"]["activation_height"],
            "operators": g["operators"]}]}))
    write("api_bodies", "proposal_info.json", to_json({
        "id": propose["tx_id"], "proposal": {
            "change": propose["json"]["body"]["change"],
            "activation_height": propose["json"]["body"]["activation_height"],
            "proposer": operator["id"], "proposed_height": 1, "epoch": 0,
            "approvals": [operator["id"]], "approval_txs": [], "decided_height": None}}))

    for target in TARGETS:
        print(f"{target:16} {written.get(target, 0):3} seeds")


if __name__ == "__main__":
    main()
