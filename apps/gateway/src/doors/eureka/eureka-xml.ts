import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { InvalidRequestError } from '@app/registry';
import { EurekaObject } from './eureka-instance';

/**
 * XML in Eureka's JSON convention (eureka-instance.ts): `<port enabled="true">8080</port>` is
 * `{"$": "8080", "@enabled": "true"}` both ways, so one mapping serves JSON and XML. Values stay text
 * (Eureka's XML has no types); the mapping reads numbers from text where Eureka has numbers.
 */
const CONVENTION = { ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '$' } as const;

const parser = new XMLParser({
  ...CONVENTION,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  // The five predefined entities only: a DOCTYPE's own entities (billion laughs) are refused below.
  processEntities: true,
});

const builder = new XMLBuilder({ ...CONVENTION, suppressBooleanAttributes: false, processEntities: true });

/** A registration body sent as XML (`<instance>...</instance>`), as the object its JSON form parses to. */
export function parseEurekaXml(text: string): EurekaObject {
  if (/<!DOCTYPE/i.test(text)) throw new InvalidRequestError('XML bodies with a DOCTYPE are refused', 'body');
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new InvalidRequestError(`the body is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`, 'body');
  const parsed: unknown = parser.parse(text);
  return typeof parsed === 'object' && parsed !== null ? (parsed as EurekaObject) : {};
}

/** An XML element name: metadata keys that are not one (`1st`, `-x`) cannot be written as XML and are left out of it. */
const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>';

/** A Eureka document (`{applications: ...}`, `{application: ...}`, `{instance: ...}`) as XML. */
export function eurekaXml(document: EurekaObject): string {
  return `${XML_DECLARATION}${eurekaXmlElements(document)}`;
}

/** The elements alone, without the declaration: a part of a larger document. */
export function eurekaXmlElements(document: EurekaObject): string {
  return builder.build(xmlSafe(document)) as string;
}

function xmlSafe(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(xmlSafe);
  if (typeof value !== 'object' || value === null) return value;
  const out: EurekaObject = {};
  for (const [key, entry] of Object.entries(value)) {
    if (key.startsWith('@') || key === '$' || XML_NAME.test(key)) out[key] = xmlSafe(entry);
  }
  return out;
}
