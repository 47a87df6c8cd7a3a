// The offline verifier: a scanned or typed QR text checked in the browser against the cached
// trust list and status list, with the server's indications (verify/report.py) and the rules of
// verify/offline.py, plus the status list, which is what lets an offline answer be PASSED.
//
// Order (the first decisive check ends it, as on the server): trust list present and current ->
// code shape -> COSE format -> key in the trust list -> ES256 signature -> presentation window or
// validity date (China date) -> status index -> status list signed, current -> its 2-bit entry.
//
// The trust list is not re-verified here against its signer: in the browser the anchor is the
// origin that served this very script (same origin, cached by the service worker); a key taken
// from the list itself would prove nothing more. Only text fixed in this file, and the signed
// payload's identifier and dates once its signature held, are ever shown.

import { codeFromText, decodePayload, hex, isRandomCode, PayloadError, PayloadType, verifySignature } from './cose.js'
import { b64urlEncode, entry, parseTime, readStatusList, StatusListError } from './statuslist.js'

export const Indication = Object.freeze({
  PASSED: 'PASSED', FAILED: 'FAILED', INDETERMINATE: 'INDETERMINATE'
})
const CLOCK_SKEW_MS = 60 * 1000 // verify/code.py CLOCK_SKEW: a phone's clock may run ahead
const LIST_SKEW_MS = 5 * 60 * 1000 // a status list dated later than this: the device clock is wrong
const DAY_MS = 86400 * 1000

export const MESSAGES = Object.freeze({
  PASSED: '证照真实有效 / the licence is genuine and valid',
  PRESENTED: '出示时证照有效 / the licence was valid when presented',
  NO_TRUST_LIST: '本设备没有信任列表，请联网打开本页一次 / no trust list on this device; open this page once online',
  BAD_TRUST_LIST: '无法读取信任列表 / the trust list on this device cannot be read',
  NO_NEXT_UPDATE: '信任列表没有下次更新时间，无法判断是否过期，请下载最新列表 / the trust list has no next_update, so it cannot be known to be current; download a fresh one',
  STALE_TRUST_LIST: '信任列表已过期，请联网更新后再核验 / the trust list is out of date; download a fresh one',
  UNKNOWN_CODE: '无法识别该二维码 / the code is not known to this service',
  ONLINE_ONLY: '此二维码只能联网核验 / this code can only be verified online',
  FORMAT_FAILURE: '二维码内容格式错误或已被改动 / the QR content is malformed or was altered',
  NO_KEY: '二维码的签名密钥不在信任列表中 / the QR was signed with a key not in the trust list',
  SIG_CRYPTO_FAILURE: '二维码签名无效，内容可能被伪造 / the QR code\'s signature is invalid; it may be forged',
  PRESENTATION_EXPIRED: '出示码已过期，请持证人刷新后重新出示 / this presentation code has expired; ask the holder to show a fresh one',
  NOT_YET_VALID: '出示码的时间晚于现在，请核对设备时间 / the presentation code is dated in the future; check the clock',
  EXPIRED: '证照已过期 / the licence has expired',
  NO_INDEX: '此二维码不含状态序号，离线无法确认证照当前状态，请联网核验 / this code carries no status index; its current status can only be confirmed online',
  NO_STATUS_LIST: '本设备没有状态列表，离线无法确认证照当前状态，请联网核验 / no status list on this device; the current status cannot be confirmed offline',
  BAD_STATUS_LIST: '状态列表不是本信任域签发的有效列表，离线无法确认证照当前状态，请联网核验 / the status list on this device is not the trust domain\'s, or is not valid; the current status cannot be confirmed offline',
  STALE_STATUS_LIST: '状态列表已过期，请联网更新后再核验 / the status list is out of date; go online to refresh it',
  FUTURE_STATUS_LIST: '状态列表的时间晚于本设备时间，请核对设备时间 / the status list is dated later than this device\'s clock; check the clock',
  NO_ENTRY: '状态列表早于这份证照，请联网更新后再核验 / the status list predates this licence; go online to refresh it',
  REVOKED: '证照已被吊销或注销 / the licence has been revoked',
  SUSPENDED: '证照已暂停使用 / the licence is suspended',
  SUPERSEDED: '证照已变更，有更新版本 / the licence was superseded by a newer version'
})
const ENTRY_FAILURES = { 1: 'REVOKED', 2: 'SUSPENDED', 3: 'SUPERSEDED' } // licences/bitstring.py

const BEIJING = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Asia/Shanghai',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23'
})

function beijingParts (date) {
  const parts = {}
  for (const { type, value } of BEIJING.formatToParts(date)) parts[type] = value
  return parts
}

/** A moment as a counter clerk reads it: Beijing time, to the second (api/pages/verify.py). */
export function beijingTime (date) {
  const p = beijingParts(date)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`
}

/** Today's date in China (core.clock.china_today), as days since 1970-01-01. */
export function chinaDay (date) {
  const p = beijingParts(date)
  return Math.round(Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day)) / DAY_MS)
}

/** A day number as YYYY-MM-DD. */
export function dayText (days) {
  return new Date(days * DAY_MS).toISOString().slice(0, 10)
}

/** Thrown by a check that decides: carries the answer. */
class Stop extends Error {
  constructor (indication, sub, message) {
    super(message)
    this.indication = indication
    this.sub = sub
  }
}

const fail = (sub, key = sub) => new Stop(Indication.FAILED, sub, MESSAGES[key])
const unsure = (sub, key) => new Stop(Indication.INDETERMINATE, sub, MESSAGES[key])

async function thumbprint (jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical))
  return b64urlEncode(new Uint8Array(digest))
}

function pemBody (pem) {
  const match = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----\s*$/.exec(pem)
  if (match === null) throw new Error('not a PEM public key')
  return Uint8Array.from(atob(match[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0))
}

const EC = { name: 'ECDSA', namedCurve: 'P-256' }

/** The keys of a trust list: QR keys by hex kid (recomputed: the first 8 bytes of the SHA-256
 * of the SubjectPublicKeyInfo), credential keys by RFC 7638 thumbprint. A key whose kid is not
 * its own makes the whole list unreadable, as verify/offline.py has it. */
export async function loadTrust (text) {
  const data = JSON.parse(text)
  if (data === null || typeof data !== 'object' || !Array.isArray(data.qr_keys)) {
    throw new Error('qr_keys is not a list')
  }
  const qrKeys = new Map()
  for (const item of data.qr_keys) {
    if (item.alg !== 'ES256') continue
    const spki = pemBody(item.public_key_pem)
    const kid = hex(new Uint8Array(await crypto.subtle.digest('SHA-256', spki)).slice(0, 8))
    if (item.kid !== kid) throw new Error(`kid ${item.kid} does not match its key`)
    qrKeys.set(kid, await crypto.subtle.importKey('spki', spki, EC, false, ['verify']))
  }
  const credentialKeys = new Map()
  for (const item of Array.isArray(data.credential_keys) ? data.credential_keys : []) {
    const jwk = item.jwk
    if (item.alg !== 'ES256' || jwk?.kty !== 'EC' || jwk?.crv !== 'P-256') continue
    const kid = await thumbprint(jwk)
    if (item.kid !== kid || jwk.kid !== kid) throw new Error(`kid ${item.kid} is not its thumbprint`)
    const key = await crypto.subtle.importKey(
      'jwk', { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, EC, false, ['verify'])
    credentialKeys.set(kid, key)
  }
  return {
    qrKeys,
    credentialKeys,
    nextUpdate: parseTime(data.next_update),
    statusListUrl: typeof data.status_list?.url === 'string' ? data.status_list.url : null
  }
}

let remembered = { trustText: null, trust: null, listText: null, list: null }

async function trustOf (text) {
  if (remembered.trustText !== text) {
    remembered = { trustText: text, trust: await loadTrust(text), listText: null, list: null }
  }
  return remembered.trust
}

/** The verified status list (remembered, so a queue of scans inflates it once). */
export async function statusListOf (token, trust) {
  if (remembered.trust !== trust || remembered.listText !== token) {
    remembered.list = await readStatusList(token, trust.credentialKeys, trust.statusListUrl)
    remembered.listText = token
  }
  return remembered.list
}

async function anchor (trustText, now, checks) {
  if (!trustText) throw unsure('NO_CHAIN_FOUND', 'NO_TRUST_LIST')
  let trust
  try {
    trust = await trustOf(trustText)
  } catch {
    throw unsure('NO_CHAIN_FOUND', 'BAD_TRUST_LIST')
  }
  if (trust.nextUpdate === null) throw unsure('TRY_LATER', 'NO_NEXT_UPDATE')
  if (trust.nextUpdate <= now) throw unsure('TRY_LATER', 'STALE_TRUST_LIST')
  checks.push(['trust_list', `until ${trust.nextUpdate.toISOString()}`])
  return trust
}

/** The cached status list, signed by a credential key of the trust list and current. */
async function currentList (statusText, trust, now, result) {
  if (!statusText) throw unsure('TRY_LATER', 'NO_STATUS_LIST')
  let list
  try {
    list = await statusListOf(statusText, trust)
  } catch (error) {
    if (error instanceof StatusListError) throw unsure('NO_CHAIN_FOUND', 'BAD_STATUS_LIST')
    throw error
  }
  result.asOf = list.validFrom
  if (list.validUntil <= now) throw unsure('TRY_LATER', 'STALE_STATUS_LIST')
  if (list.validFrom.getTime() > now.getTime() + LIST_SKEW_MS) {
    throw unsure('TRY_LATER', 'FUTURE_STATUS_LIST')
  }
  return list
}

async function status (claims, statusText, trust, now, result) {
  if (claims.statusIndex === null) throw unsure('TRY_LATER', 'NO_INDEX')
  const list = await currentList(statusText, trust, now, result)
  const value = entry(list.raw, claims.statusIndex)
  if (value === null) throw unsure('TRY_LATER', 'NO_ENTRY')
  if (value !== 0) throw fail(ENTRY_FAILURES[value])
  result.checks.push(['status', `entry ${claims.statusIndex}: valid`])
}

async function signedClaims (code, trust, result) {
  let signed
  try {
    signed = decodePayload(code)
  } catch (error) {
    if (error instanceof PayloadError) throw fail('FORMAT_FAILURE')
    throw error
  }
  result.checks.push(['format', 'COSE_Sign1 ES256'])
  const key = trust.qrKeys.get(hex(signed.kid))
  if (key === undefined) throw unsure('NO_SIGNING_CERTIFICATE_FOUND', 'NO_KEY')
  if (!(await verifySignature(signed, key))) throw fail('SIG_CRYPTO_FAILURE')
  result.checks.push(['signature', `ES256, key ${hex(signed.kid)}`])
  return signed.claims
}

/** Verify ``text`` (a scanned URL or bare code) offline. ``trustText``: the trust list JSON;
 * ``statusText``: the status list's compact JWS; either may be null when none is cached.
 * Returns { indication, sub, message, claims, asOf, checks } and never throws for bad input. */
export async function verifyOffline (text, { trustText, statusText, now = new Date() }) {
  const result = { indication: null, sub: null, message: '', claims: null, asOf: null, checks: [] }
  try {
    const trust = await anchor(trustText, now, result.checks)
    const code = codeFromText(text)
    if (code === null) throw fail('UNKNOWN_CODE')
    if (isRandomCode(code)) throw unsure('TRY_LATER', 'ONLINE_ONLY')
    const claims = await signedClaims(code, trust, result)
    result.claims = { // believed only now that the signature held
      type: claims.type,
      identifier: claims.identifier,
      validUntil: claims.validDays === null ? null : dayText(claims.validDays),
      copyId: claims.copyId,
      presentedAt: claims.type === PayloadType.PRESENTATION ? claims.issuedAt : null,
      expiresAt: claims.expiresAt
    }
    if (claims.type === PayloadType.PRESENTATION) {
      if (now > claims.expiresAt) throw fail('EXPIRED', 'PRESENTATION_EXPIRED')
      if (claims.issuedAt.getTime() > now.getTime() + CLOCK_SKEW_MS) {
        throw unsure('NOT_YET_VALID', 'NOT_YET_VALID')
      }
      result.checks.push(['presentation', 'within its window'])
      Object.assign(result, { indication: Indication.PASSED, message: MESSAGES.PRESENTED })
      return result
    }
    if (claims.validDays !== null && claims.validDays < chinaDay(now)) throw fail('EXPIRED')
    result.checks.push(['validity', 'within its validity dates'])
    await status(claims, statusText, trust, now, result)
    Object.assign(result, { indication: Indication.PASSED, message: MESSAGES.PASSED })
  } catch (error) {
    if (!(error instanceof Stop)) throw error
    Object.assign(result, { indication: error.indication, sub: error.sub, message: error.message })
  }
  return result
}

/** Whether this device can verify offline now: { ready, asOf, message }. ``ready`` only when
 * the trust list is current and the status list is the domain's, signed and current. */
export async function readiness ({ trustText, statusText, now = new Date() }) {
  try {
    const trust = await anchor(trustText, now, [])
    const list = await currentList(statusText, trust, now, {})
    return { ready: true, asOf: list.validFrom, message: '' }
  } catch (error) {
    if (!(error instanceof Stop)) throw error
    return { ready: false, asOf: null, message: error.message }
  }
}
