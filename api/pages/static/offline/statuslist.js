// The domain's signed status list, read in the browser (docs/status-list.md).
//
// A compact JWS (ES256, typ vc+jwt) over a W3C BitstringStatusListCredential, verified with the
// credential key the trust list names by kid (trust/jose.py verify_compact's rules), then the
// GZIP'd 2-bit list inflated with DecompressionStream under a size bound, as
// licences/bitstring.py decode() does: a GZIP bomb is a small download.

const MAX_TOKEN = 4 * 1024 * 1024 // characters of a compact JWS read at most (trust.jose)
const TYP = 'vc+jwt'
const STATUS_SIZE = 2
export const MIN_ENTRIES = 2 ** 22
export const MAX_ENTRIES = 2 ** 26
const CONTEXT = 'https://www.w3.org/ns/credentials/v2'
const CREDENTIAL_TYPES = ['VerifiableCredential', 'BitstringStatusListCredential']
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/** A status list that cannot be used: its reason, in Chinese then English. */
export class StatusListError extends Error {}

export function b64urlDecode (text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new StatusListError('not unpadded base64url')
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

export function b64urlEncode (bytes) {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function json (bytes, what) {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new StatusListError(`${what} is not JSON`)
  }
}

export function parseTime (value) {
  if (typeof value !== 'string' || !ISO_TIME.test(value)) return null
  const time = new Date(value)
  return Number.isNaN(time.getTime()) ? null : time
}

/** The header and payload of a compact ES256 JWS of type ``typ`` signed by a key ``keys``
 * holds (a Map kid -> CryptoKey); StatusListError otherwise. */
export async function verifyCompact (token, keys, typ = TYP) {
  if (typeof token !== 'string' || token.length > MAX_TOKEN) {
    throw new StatusListError('the JWS is missing or too large')
  }
  const parts = token.trim().split('.')
  if (parts.length !== 3) throw new StatusListError('not a compact JWS')
  const header = json(b64urlDecode(parts[0]), 'the JWS header')
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new StatusListError('the JWS header is not an object')
  }
  if (header.alg !== 'ES256') throw new StatusListError('the JWS algorithm must be ES256')
  if (header.typ !== typ) throw new StatusListError(`the JWS type must be ${typ}`)
  if ('crit' in header) throw new StatusListError('critical JWS header parameters are not supported')
  const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined
  if (key === undefined) throw new StatusListError('the JWS names no key of the trust list')
  const signature = b64urlDecode(parts[2])
  if (signature.length !== 64) throw new StatusListError('an ES256 signature is 64 bytes')
  const input = new TextEncoder().encode(`${parts[0]}.${parts[1]}`)
  const good = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, input)
  if (!good) throw new StatusListError('the JWS signature does not verify')
  return { header, payload: json(b64urlDecode(parts[1]), 'the JWS payload') }
}

/** The raw list from encodedList, never inflating past ``maxEntries`` entries. */
export async function decodeList (encoded, maxEntries = MAX_ENTRIES) {
  if (typeof encoded !== 'string' || !encoded.startsWith('u')) {
    throw new StatusListError('encodedList is not multibase base64url (prefix u)')
  }
  const body = encoded.slice(1)
  if (!body || body.includes('=')) throw new StatusListError('encodedList is not unpadded base64url')
  const packed = b64urlDecode(body)
  const limit = (maxEntries * STATUS_SIZE) / 8
  const reader = new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip')).getReader()
  const chunks = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.length
      if (total > limit) {
        await reader.cancel()
        throw new StatusListError(`the list is larger than ${maxEntries} entries`)
      }
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof StatusListError) throw error
    throw new StatusListError('encodedList is not GZIP, or is truncated')
  }
  if (total < (MIN_ENTRIES * STATUS_SIZE) / 8) {
    throw new StatusListError(`the list is shorter than ${MIN_ENTRIES} entries`)
  }
  const raw = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    raw.set(chunk, at)
    at += chunk.length
  }
  return raw
}

/** The 2-bit entry at ``index`` (bits 2i and 2i+1 from the first byte's most significant bit,
 * big-endian); null when the list has no such entry. */
export function entry (raw, index) {
  if (!Number.isInteger(index) || index < 0 || index >= (raw.length * 8) / STATUS_SIZE) return null
  const bit = index * STATUS_SIZE
  return (raw[bit >> 3] >> (8 - STATUS_SIZE - (bit % 8))) & 0b11
}

/** A verified, decoded status list: { raw, validFrom, validUntil }, read as
 * verify/offline_status.py reads it. The caller decides whether it is current; this only says
 * whether it is the list the trust list names (its id), signed by one of its credential keys,
 * in this format. */
export async function readStatusList (token, credentialKeys, expectedId) {
  if (credentialKeys.size === 0 || !expectedId) {
    throw new StatusListError('the trust list publishes no status list')
  }
  const { header, payload } = await verifyCompact(token, credentialKeys)
  if ((header.cty ?? 'vc') !== 'vc') throw new StatusListError('cty is not vc')
  if (payload === null || typeof payload !== 'object') throw new StatusListError('not an object')
  const context = payload['@context']
  const types = payload.type
  const subject = payload.credentialSubject
  if (!Array.isArray(context) || context[0] !== CONTEXT) {
    throw new StatusListError(`@context must start with ${CONTEXT}`)
  }
  if (!Array.isArray(types) || !CREDENTIAL_TYPES.every((t) => types.includes(t))) {
    throw new StatusListError('not a BitstringStatusListCredential')
  }
  const purpose = subject?.statusPurpose
  if (subject === null || typeof subject !== 'object' || subject.type !== 'BitstringStatusList' ||
      !(purpose === 'message' || (Array.isArray(purpose) && purpose.length === 1 && purpose[0] === 'message')) ||
      (subject.statusSize ?? STATUS_SIZE) !== STATUS_SIZE) {
    throw new StatusListError('not a 2-bit message status list')
  }
  if (payload.id !== expectedId) throw new StatusListError('not the list the trust list names')
  const validFrom = parseTime(payload.validFrom)
  const validUntil = parseTime(payload.validUntil)
  if (validFrom === null || validUntil === null || validUntil <= validFrom) {
    throw new StatusListError('validFrom and validUntil are required, in that order')
  }
  return { raw: await decodeList(subject.encodedList), validFrom, validUntil }
}
