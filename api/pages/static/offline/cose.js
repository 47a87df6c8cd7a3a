// The QR code's signed payload, read in the browser: the same rules as licences/payload.py.
//
// Why a second reader: /verify must answer with the network gone, so the phone or counter PC
// checks the code itself. Everything here refuses what the Python decoder refuses (non-canonical
// base32, trailing bytes, a missing or mistyped claim), and is stricter where cborg is strict
// (minimal integer encodings, no indefinite lengths, no duplicate map keys): a genuine code,
// written by cbor2, is always canonical. Nothing a payload says is believed before
// verifySignature() has checked it.

import { decode, encode, Tagged } from '../vendor/cborg/cborg.js'

export const MAX_TEXT = 1024 // characters of base32 read at most (licences.payload.MAX_TEXT)
const LEGACY_MAX = 32 // random codes (licences.links.LEGACY_MAX) name a licence, signed ones are longer
const COSE_SIGN1_TAG = 18
const ALG_ES256 = -7
const HEADER_ALG = 1
const HEADER_KID = 4
const DIGEST_BYTES = 16
const MAX_STATUS_INDEX = 2 ** 32
const PREFIX = '1.2.156.3005.2.' // GB/T 36904
const MAX_IDENTIFIER = 94
const ALNUM36 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

export const PayloadType = Object.freeze({ LICENCE: 1, PRESENTATION: 2, COPY: 3 })
const Key = Object.freeze({
  TYPE: 0,
  IDENTIFIER: 1,
  RECORD_DIGEST: 3,
  VALID_UNTIL: 5,
  ISSUED_AT: 6,
  EXPIRES_AT: 7,
  NONCE: 8,
  STATUS_INDEX: 9,
  COPY_ID: 10
})

// cborg's strict reading: what a hostile code could use to say one thing two ways is refused.
const STRICT = Object.freeze({
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  useMaps: true,
  rejectDuplicateMapKeys: true
})
const OUTER = Object.freeze({ ...STRICT, tags: { [COSE_SIGN1_TAG]: Tagged.decoder(COSE_SIGN1_TAG) } })

/** A code that is not a well-formed payload of this service (before any signature check). */
export class PayloadError extends Error {}

/** The verification code in a scanned text: a bare code or a URL ending in /V/<code>
 * (licences.links.code_from_text); null when there is none. */
export function codeFromText (text) {
  let candidate = String(text).trim()
  if (candidate.includes('/')) {
    const trimmed = candidate.replace(/\/+$/, '')
    const cut = trimmed.lastIndexOf('/')
    if (!trimmed.slice(0, cut).toUpperCase().endsWith('/V')) return null
    candidate = trimmed.slice(cut + 1)
  }
  candidate = candidate.toUpperCase()
  return candidate.length >= 16 && candidate.length <= MAX_TEXT && /^[A-Z0-9]+$/.test(candidate)
    ? candidate
    : null
}

/** A random code (a stamped copy's of old, a licence's from before signed codes): online only. */
export function isRandomCode (code) {
  return code.length <= LEGACY_MAX
}

/** Unpadded upper-case base32 with one spelling per byte string, as licences.payload reads it. */
export function base32Decode (text) {
  if (!/^[A-Z2-7]+$/.test(text)) throw new PayloadError('not base32')
  const spare = (5 * text.length) % 8
  if (spare >= 5) throw new PayloadError('not base32')
  const out = new Uint8Array(Math.floor((5 * text.length) / 8))
  let buffer = 0
  let bits = 0
  let at = 0
  for (const char of text) {
    buffer = ((buffer << 5) | BASE32.indexOf(char)) & 0x1fff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[at++] = (buffer >> bits) & 0xff
    }
  }
  if (buffer & ((1 << bits) - 1)) throw new PayloadError('not canonical base32')
  return out
}

function cbor (bytes, options) {
  try {
    return decode(bytes, options)
  } catch (error) {
    throw new PayloadError(`not CBOR: ${error.message}`)
  }
}

function isInteger (value) {
  return typeof value === 'number' && Number.isInteger(value)
}

function claim (map, key, name, test) {
  const value = map.get(key)
  if (!test(value)) throw new PayloadError(`claim ${name} missing or of the wrong type`)
  return value
}

function mod37x36Valid (data) {
  let p = 36
  for (const char of data) {
    const value = ALNUM36.indexOf(char)
    if (value < 0) return false
    p = (((p + value) % 36 || 36) * 2) % 37
  }
  return p === 2
}

/** GB/T 36904 shape: prefix, five parts, version 001-999 and the MOD 37,36 check character. */
export function isIdentifier (text) {
  if (typeof text !== 'string' || text.length > MAX_IDENTIFIER || !text.startsWith(PREFIX)) {
    return false
  }
  const parts = text.slice(PREFIX.length).split('.')
  if (parts.length !== 5) return false
  const [type, issuer, serial, version, check] = parts
  return /^[0-9A-Z]+$/.test(type) && /^[0-9A-Z]{18}$/.test(issuer) &&
    /^[0-9A-Z]{1,32}$/.test(serial) && /^[0-9]{3}$/.test(version) && version !== '000' &&
    check.length === 1 && mod37x36Valid(type + issuer + serial + version + check)
}

// The seconds Python's datetime can hold (years 1 to 9999): what licences.payload accepts.
const FIRST_SECOND = -62135596800
const LAST_SECOND = 253402300799

function seconds (value, name) {
  if (!isInteger(value) || value < FIRST_SECOND || value > LAST_SECOND) {
    throw new PayloadError(`claim ${name} missing or out of range`)
  }
  return new Date(value * 1000)
}

/** The decoded, not yet trusted, COSE_Sign1: { kid, claims, toBeSigned, signature }. */
export function decodePayload (text) {
  const code = String(text).trim().toUpperCase()
  if (!code || code.length > MAX_TEXT) throw new PayloadError('empty or too long')
  const item = cbor(base32Decode(code), OUTER)
  if (!(item instanceof Tagged) || item.tag !== COSE_SIGN1_TAG) {
    throw new PayloadError('not a COSE_Sign1 message')
  }
  const parts = item.value
  if (!Array.isArray(parts) || parts.length !== 4) {
    throw new PayloadError('COSE_Sign1 must have four parts')
  }
  const [protectedBytes, , payload, signature] = parts
  if (![protectedBytes, payload, signature].every((part) => part instanceof Uint8Array)) {
    throw new PayloadError('COSE_Sign1 parts have the wrong types')
  }
  if (signature.length !== 64) throw new PayloadError('ES256 signature must be 64 bytes')
  const header = cbor(protectedBytes, STRICT)
  if (!(header instanceof Map) || header.get(HEADER_ALG) !== ALG_ES256) {
    throw new PayloadError('algorithm must be ES256')
  }
  const kid = header.get(HEADER_KID)
  if (!(kid instanceof Uint8Array) || kid.length < 1 || kid.length > 32) {
    throw new PayloadError('kid missing')
  }
  const data = cbor(payload, STRICT)
  if (!(data instanceof Map)) throw new PayloadError('payload must be a map')
  const type = claim(data, Key.TYPE, 'type', isInteger)
  if (!Object.values(PayloadType).includes(type)) throw new PayloadError('unknown payload type')
  const digest = claim(data, Key.RECORD_DIGEST, 'record_digest', (v) => v instanceof Uint8Array)
  const identifier = claim(data, Key.IDENTIFIER, 'identifier', (v) => typeof v === 'string')
  if (digest.length !== DIGEST_BYTES) throw new PayloadError('record digest of the wrong size')
  if (!isIdentifier(identifier)) throw new PayloadError('not a GB/T 36904 licence identifier')
  const validDays = data.get(Key.VALID_UNTIL) ?? null
  if (validDays !== null && (!isInteger(validDays) || Math.abs(validDays) > 1e6)) {
    throw new PayloadError('valid_until out of range')
  }
  const statusIndex = data.get(Key.STATUS_INDEX) ?? null
  if (statusIndex !== null && (!isInteger(statusIndex) || statusIndex < 0 ||
      statusIndex >= MAX_STATUS_INDEX)) {
    throw new PayloadError('status index out of range')
  }
  const claims = {
    type,
    identifier,
    validDays,
    issuedAt: seconds(data.get(Key.ISSUED_AT), 'issued_at'),
    statusIndex,
    copyId: null,
    expiresAt: null
  }
  if (type === PayloadType.COPY) {
    claims.copyId = claim(data, Key.COPY_ID, 'copy_id', (v) => typeof v === 'string')
    if (!/^[0-9a-f]{16}$/.test(claims.copyId)) {
      throw new PayloadError('copy id must be 16 hexadecimal digits')
    }
  }
  if (type === PayloadType.PRESENTATION) {
    claims.expiresAt = seconds(data.get(Key.EXPIRES_AT), 'expires_at')
    claim(data, Key.NONCE, 'nonce', (v) => v instanceof Uint8Array)
  }
  // RFC 9052 section 4.4: what the signature covers, encoded by the same library.
  const toBeSigned = encode(['Signature1', protectedBytes, new Uint8Array(0), payload])
  return { kid, claims, toBeSigned, signature }
}

/** Whether the ES256 signature (raw r||s, as WebCrypto reads it) verifies under ``key``. */
export async function verifySignature (signed, key) {
  return crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' }, key, signed.signature, signed.toBeSigned
  )
}

export function hex (bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
