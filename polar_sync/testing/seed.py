"""Deterministic, realistic seeding: ``seed_records(n=..., seed=...)``, a pure function.

It returns customer records and touches no store: ``PolarStore.seed`` indexes them
(``seed_customers(store, n, seed)`` is the same call, kept for callers of the
function). The same ``(n, seed)`` on a fresh store always gives the same customers (ids, emails,
timestamps, state). Built for volume: one million customers take seconds, because each
customer costs two RNG draws sliced into choices, and its subscriptions, grants and meters
are only generated (from a per-customer RNG seed) when something first asks for them.

What a seeded organization looks like: ~92% of customers have an ``external_id``, ~95% a
name, ~85% a billing address in one of 25 countries (~12% of those a tax id), ~80%
metadata, ~40% an active subscription (to the catalog's products, with their benefit
grants and meters) and ~15% a non-zero balance. No seeded customer is deleted.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Container
from typing import Protocol

from .records import CustomerRecord, to_us, uuid4_from

# Seeded customers are created between these two instants; seeded subscriptions are
# current as of the second one. Fixed, so that a seed gives the same world every time.
SEED_START_US = to_us("2021-01-01T00:00:00Z")
SEED_END_US = to_us("2025-10-01T00:00:00Z")


def odds(probability: float, bits: int = 8) -> int:
    """The threshold under which a uniform draw of ``bits`` bits falls with ``probability``."""
    return round(probability * (1 << bits))


# Each choice reads its own few bits of a customer's two 64-bit draws; a threshold
# says how often it happens (the rounding to 1/256 or 1/16 is the exact share).
HAS_EXTERNAL_ID = odds(0.92)
HAS_ADDRESS = odds(0.85)
HAS_ADDRESS_LINE2 = odds(0.1875, bits=4)
HAS_TAX_ID = odds(0.12)  # of those with an address
HAS_METADATA = odds(0.80)
WAS_MODIFIED = odds(0.375, bits=4)
HAS_BALANCE = odds(0.15)
EMAIL_VERIFIED = odds(0.625, bits=4)
# An active subscription: one in two, then 13 in 16 of those (about 40%).
MAY_SUBSCRIBE, SUBSCRIBES = odds(0.5, bits=2), odds(0.8125, bits=4)

# fmt: off
FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Sofía", "Mateo", "Léa", "Lucas", "Mia", "Elias",
    "Hannah", "Jonas", "Chloé", "Hugo", "Giulia", "Lorenzo", "Aiko", "Haruto", "Priya", "Arjun",
    "Ana", "João", "Fatima", "Omar", "Zoe", "Jack", "Amelia", "Oliver", "Ingrid", "Lars",
    "Zofia", "Jakub", "Chen", "Wei", "Min-jun", "Seo-yeon", "Amara", "Kwame", "Isabella",
    "Diego", "Nora", "Felix",
)
LAST_NAMES = (
    "Smith", "Johnson", "Müller", "Schmidt", "Martin", "Bernard", "García", "Fernández",
    "Rossi", "Russo", "Tanaka", "Sato", "Sharma", "Patel", "Silva", "Santos", "Kowalski",
    "Nowak", "Andersson", "Johansson", "Nielsen", "Hansen", "Dubois", "Moreau", "Kim", "Lee",
    "Wang", "Li", "Okafor", "Mensah", "Brown", "Wilson", "Taylor", "O'Brien", "Murphy",
    "van Dijk", "de Vries", "Novák", "Horvat", "Yilmaz",
)
# fmt: on
_ASCII = str.maketrans("áéíóúüöäçãñł", "aeiouuoacanl", " '-")
# fmt: off
DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "icloud.com",
    "proton.me", "hey.com", "fastmail.com", "gmx.de", "orange.fr", "web.de", "acme.io",
    "initech.com", "hooli.xyz",
)
# fmt: on
PLANS = ("free", "starter", "pro", "pro", "team", "enterprise")
SOURCES = ("organic", "ads", "referral", "partner", "newsletter", "producthunt")
LINE2 = ("Apt 4B", "Suite 300", "Floor 2", "Unit 12", "c/o Accounts Payable")


_POWERS = tuple(10**i for i in range(20))


def _digits(r: int, count: int) -> str:
    return str(r % _POWERS[count]).zfill(count)


# code, weight, streets, [(city, state)], postal(r), tax format, tax value(r)
Country = tuple[
    str, int, tuple[str, ...], tuple[tuple[str, str | None], ...],
    Callable[[int], str], str, Callable[[int], str],
]  # fmt: skip
COUNTRIES: tuple[Country, ...] = (
    ("US", 30, ("Main St", "Market Street", "Broadway", "Elm Avenue", "5th Avenue"),
     (("San Francisco", "CA"), ("New York", "NY"), ("Austin", "TX"), ("Seattle", "WA"),
      ("Chicago", "IL")), lambda r: _digits(r, 5), "us_ein", lambda r: _digits(r, 9)),
    ("GB", 8, ("High Street", "Station Road", "Baker Street"),
     (("London", None), ("Manchester", None), ("Edinburgh", None)),
     lambda r: f"SW{r % 20 + 1} {r % 9 + 1}AB", "gb_vat", lambda r: "GB" + _digits(r, 9)),
    ("DE", 8, ("Hauptstraße", "Bahnhofstraße", "Schillerstraße"),
     (("Berlin", None), ("München", None), ("Hamburg", None)),
     lambda r: _digits(r, 5), "eu_vat", lambda r: "DE" + _digits(r, 9)),
    ("FR", 6, ("Rue de Rivoli", "Avenue Victor Hugo", "Rue de la Paix"),
     (("Paris", None), ("Lyon", None), ("Marseille", None)),
     lambda r: _digits(r, 5), "eu_vat", lambda r: "FR" + _digits(r, 11)),
    ("CA", 5, ("King Street W", "Granville Street", "Rue Sainte-Catherine"),
     (("Toronto", "ON"), ("Vancouver", "BC"), ("Montréal", "QC")),
     lambda r: f"M{r % 9 + 1}V {r % 9 + 1}T{r % 7 + 1}", "ca_bn", lambda r: _digits(r, 9)),
    ("NL", 3, ("Damrak", "Prinsengracht"), (("Amsterdam", None), ("Rotterdam", None)),
     lambda r: f"{1000 + r % 8999} AB", "eu_vat", lambda r: f"NL{_digits(r, 9)}B01"),
    ("SE", 3, ("Drottninggatan", "Kungsgatan"), (("Stockholm", None), ("Göteborg", None)),
     lambda r: f"1{_digits(r, 2)} {_digits(r >> 8, 2)}", "eu_vat",
     lambda r: f"SE{_digits(r, 10)}01"),
    ("ES", 3, ("Gran Vía", "Calle de Alcalá"), (("Madrid", None), ("Barcelona", None)),
     lambda r: _digits(r, 5), "eu_vat", lambda r: f"ESX{_digits(r, 7)}X"),
    ("IT", 3, ("Via Roma", "Corso Buenos Aires"), (("Roma", None), ("Milano", None)),
     lambda r: _digits(r, 5), "eu_vat", lambda r: "IT" + _digits(r, 11)),
    ("AU", 3, ("George Street", "Collins Street"), (("Sydney", "NSW"), ("Melbourne", "VIC")),
     lambda r: _digits(r, 4), "au_abn", lambda r: _digits(r, 11)),
    ("IN", 4, ("MG Road", "Linking Road"), (("Bengaluru", "KA"), ("Mumbai", "MH")),
     lambda r: f"5600{_digits(r, 2)}", "in_gst", lambda r: f"29ABCDE{_digits(r, 4)}F1Z5"),
    ("BR", 3, ("Avenida Paulista", "Rua Augusta"), (("São Paulo", "SP"), ("Rio de Janeiro", "RJ")),
     lambda r: f"0{_digits(r, 4)}-100", "br_cnpj", lambda r: _digits(r, 14)),
    ("JP", 3, ("Chuo-dori", "Omotesando"), (("Tokyo", None), ("Osaka", None)),
     lambda r: f"1{_digits(r, 2)}-{_digits(r >> 8, 4)}", "jp_cn", lambda r: _digits(r, 13)),
    ("CH", 2, ("Bahnhofstrasse", "Rue du Rhône"), (("Zürich", None), ("Genève", None)),
     lambda r: _digits(r, 4), "ch_vat", lambda r: f"CHE-{_digits(r, 9)} MWST"),
    ("NO", 1, ("Karl Johans gate",), (("Oslo", None),),
     lambda r: _digits(r, 4), "no_vat", lambda r: f"{_digits(r, 9)}MVA"),
    ("PL", 2, ("Marszałkowska", "Floriańska"), (("Warszawa", None), ("Kraków", None)),
     lambda r: f"{_digits(r, 2)}-{_digits(r >> 8, 3)}", "eu_vat", lambda r: "PL" + _digits(r, 10)),
    ("SG", 1, ("Orchard Road",), (("Singapore", None),),
     lambda r: _digits(r, 6), "sg_gst", lambda r: f"M{_digits(r, 8)}X"),
    ("MX", 2, ("Paseo de la Reforma",), (("Ciudad de México", "CDMX"), ("Guadalajara", "JAL")),
     lambda r: _digits(r, 5), "mx_rfc", lambda r: f"ABC{_digits(r, 6)}XY1"),
    ("ZA", 1, ("Long Street",), (("Cape Town", "WC"),),
     lambda r: _digits(r, 4), "za_vat", lambda r: "4" + _digits(r, 9)),
    ("NZ", 1, ("Queen Street",), (("Auckland", None),),
     lambda r: _digits(r, 4), "nz_gst", lambda r: _digits(r, 9)),
    ("KR", 1, ("Teheran-ro",), (("Seoul", None),),
     lambda r: _digits(r, 5), "kr_brn", lambda r: _digits(r, 10)),
    ("AR", 1, ("Avenida Corrientes",), (("Buenos Aires", None),),
     lambda r: f"C{_digits(r, 4)}", "ar_cuit", lambda r: f"20-{_digits(r, 8)}-3"),
    ("IE", 1, ("Grafton Street",), (("Dublin", None),),
     lambda r: f"D0{r % 9 + 1} X{_digits(r, 3)}", "eu_vat", lambda r: f"IE{_digits(r, 7)}WA"),
    ("PT", 1, ("Rua Augusta",), (("Lisboa", None),),
     lambda r: f"1{_digits(r, 3)}-148", "eu_vat", lambda r: "PT" + _digits(r, 9)),
    ("NG", 1, ("Allen Avenue",), (("Lagos", "LA"),),
     lambda r: f"1{_digits(r, 5)}", "ng_tin", lambda r: f"{_digits(r, 8)}-0001"),
)  # fmt: skip
_COUNTRY_TABLE: tuple[Country, ...] = tuple(
    country for country in COUNTRIES for _ in range(country[1])
)


class Seedable(Protocol):
    def seed(self, n: int = ..., seed: int = ...) -> None: ...


def seed_customers(store: Seedable, n: int = 1000, seed: int = 0) -> None:
    """Add ``n`` customers to ``store``, deterministically for ``seed``; no events."""
    store.seed(n, seed)


def seed_records(
    *,
    n: int,
    seed: int,
    first_seq: int = 1,
    taken_emails: Container[str] = (),
    taken_external: Container[str] = (),
) -> list[CustomerRecord]:
    """``n`` customer records, the same ones for the same arguments.

    ``first_seq`` numbers them (emails and external IDs derive from it); an email or
    external ID in ``taken_*`` is replaced so that the records never clash with a
    store's existing customers.
    """
    rng = random.Random(seed)
    bits = rng.getrandbits
    first_names = [(f, f.lower().translate(_ASCII)) for f in FIRST_NAMES]
    last_names = [(name, name.lower().translate(_ASCII)) for name in LAST_NAMES]
    step = max((SEED_END_US - SEED_START_US) // max(n, 1), 1)
    base_seq = first_seq - 1
    records: list[CustomerRecord] = []
    append = records.append
    n_first, n_last, n_domains = len(first_names), len(last_names), len(DOMAINS)
    n_countries = len(_COUNTRY_TABLE)
    for i in range(n):
        seq = base_seq + i + 1
        r = bits(64)
        s = bits(64)
        first, first_ascii = first_names[r % n_first]
        last, last_ascii = last_names[(r >> 6) % n_last]
        email = f"{first_ascii}.{last_ascii}{seq}@{DOMAINS[(r >> 12) % n_domains]}"
        if email in taken_emails:
            email = f"seeded-{seq}-{uuid4_from(rng)[:8]}@example.com"
        created = SEED_START_US + i * step + (s % step)
        roll = (r >> 20) & 0xFF  # 0..255 for the share-based choices below
        external_id = f"usr_{seq:07d}" if roll < HAS_EXTERNAL_ID else None
        if external_id is not None and external_id in taken_external:
            external_id = None
        address = tax_id = None
        if (r >> 28) & 0xFF < HAS_ADDRESS:
            code, _, streets, cities, postal, tax_format, tax_value = _COUNTRY_TABLE[
                (r >> 36) % n_countries
            ]
            city, state = cities[(s >> 8) % len(cities)]
            line2 = LINE2[(s >> 16) % len(LINE2)] if (s >> 20) & 0xF < HAS_ADDRESS_LINE2 else None
            street = streets[(s >> 24) % len(streets)]
            address = (f"{(s >> 32) % 999 + 1} {street}", line2, postal(s >> 40), city, state,
                       code)  # fmt: skip
            if (s >> 48) & 0xFF < HAS_TAX_ID:
                tax_id = (tax_value(s >> 20), tax_format)
        metadata: dict[str, object] = {}
        if (r >> 44) & 0xFF < HAS_METADATA:
            metadata["plan"] = PLANS[(r >> 52) % len(PLANS)]
            if r >> 55 & 1:
                metadata["source"] = SOURCES[(r >> 56) % len(SOURCES)]
            if r >> 59 & 1:
                metadata["seats"] = (s >> 56) % 50 + 1
            if r >> 60 & 1:
                metadata["beta"] = bool(r >> 61 & 1)
        modified = None
        if (s >> 4) & 0xF < WAS_MODIFIED:
            modified = min(created + (s >> 8) % (200 * 86_400_000_000), SEED_END_US)
        balance = 0
        if (s >> 52) & 0xFF < HAS_BALANCE:
            balance = (s >> 12) % 30_000 - 5_000
        subscribes = (r >> 62) & 0x3 < MAY_SUBSCRIBE and s & 0xF < SUBSCRIBES
        state_key = bits(63) if subscribes else None
        append(
            CustomerRecord(
                uuid4_from(rng),
                seq,
                created,
                email,
                modified,  # modified_us
                None,  # deleted_us
                (s >> 60) & 0xF < EMAIL_VERIFIED,  # email_verified
                f"{first} {last}" if (r >> 4) & 0x1F else None,  # name: 31 in 32
                external_id,
                address,  # billing_address
                tax_id,
                metadata,
                balance,
                state_key,
            )
        )
    return records
