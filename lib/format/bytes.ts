/**
 * Strict byte encodings (RFC 4648 base64 and base64url, hex). Decoders reject anything a
 * lenient decoder would silently accept (bad alphabet, wrong padding, non-zero trailing
 * bits), so two parties never disagree about which bytes a text denotes.
 */
import { FormatError } from '../errors';

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const B64URL = /^[A-Za-z0-9_-]*$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/** Standard base64 with padding (RFC 4648 §4), as used in C2SP notes. */
export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

/** Decode standard padded base64 (RFC 4648 §4), rejecting non-canonical text. */
export function fromBase64(s: string, what = 'base64'): Buffer {
  if (typeof s !== 'string' || !B64.test(s)) throw new FormatError('E_ENCODING', `${what} is not valid base64`);
  const out = Buffer.from(s, 'base64');
  if (out.toString('base64') !== s) throw new FormatError('E_ENCODING', `${what} is not canonical base64`);
  return out;
}

/** base64url without padding (RFC 4648 §5), as used for envelope signatures. */
export function toBase64Url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

/** Decode unpadded base64url (RFC 4648 §5), rejecting padding and non-canonical text. */
export function fromBase64Url(s: string, what = 'base64url'): Buffer {
  if (typeof s !== 'string' || !B64URL.test(s) || s.length % 4 === 1) {
    throw new FormatError('E_ENCODING', `${what} is not valid unpadded base64url`);
  }
  const out = Buffer.from(s, 'base64url');
  if (out.toString('base64url') !== s) throw new FormatError('E_ENCODING', `${what} is not canonical base64url`);
  return out;
}

/** Lower-case hex. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Decode hex (either case), rejecting odd length and non-hex characters. */
export function fromHex(s: string, what = 'hex'): Buffer {
  if (typeof s !== 'string' || !HEX.test(s)) throw new FormatError('E_ENCODING', `${what} is not valid hex`);
  return Buffer.from(s, 'hex');
}

/** Constant-shape equality of two byte arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}
