//! MariaDB's own conversion of its legacy character sets, where it differs
//! from encoding_rs's decoders (the WHATWG Encoding Standard's tables, made
//! for the web): [`crate::source::value::decode_text`] decodes with encoding_rs and
//! puts these characters in place of what it gives for these codes.
//!
//! Generated, not edited: `tests/it/charsets.rs` stores every valid code of
//! each character set in a column of that set on MariaDB 10.11.19-MariaDB-0+deb12u1-log, asks the
//! server for `CONVERT(col USING utf8mb4)` of each, and writes this file with
//! `ROWHOOK_WRITE_CHARSET_TABLES=src/source/charset_tables.rs cargo test --test it charsets`.
//! Where the server has no character for a code (its conversion gives `?`),
//! the table says U+FFFD. The same test then checks rowhook's decoding of
//! every code against the server.
//!
//! Each table: runs `(first code, last code, first character)`, sorted and
//! not overlapping; a code is its bytes read big-endian (`0x8160`). The codes
//! of a run decode to consecutive characters from the first, or all to U+FFFD
//! when the first is U+FFFD. A run may span codes the server does not accept
//! (never stored, never looked up).

/// Runs of corrected codes; see the module docs.
pub type Corrections = &'static [(u32, u32, char)];

/// big5: 451 of its 14101 codes, in 34 runs.
#[rustfmt::skip]
pub static BIG5: Corrections = &[
    (0xA145, 0xA145, '\u{2022}'), (0xA14E, 0xA14E, '\u{ff64}'), (0xA15A, 0xA15A, '\u{fffd}'), (0xA1C2, 0xA1C2, '\u{203e}'),
    (0xA1C3, 0xA1C3, '\u{fffd}'), (0xA1C5, 0xA1C5, '\u{fffd}'), (0xA1E3, 0xA1E3, '\u{223c}'), (0xA1F2, 0xA1F2, '\u{2641}'),
    (0xA1F3, 0xA1F3, '\u{2609}'), (0xA1FE, 0xA240, '\u{fffd}'), (0xA241, 0xA241, '\u{ff0f}'), (0xA242, 0xA242, '\u{ff3c}'),
    (0xA244, 0xA244, '\u{a5}'), (0xA246, 0xA247, '\u{a2}'), (0xA2CC, 0xA2CC, '\u{fffd}'), (0xA2CE, 0xA2CE, '\u{fffd}'),
    (0xA3C0, 0xA3E1, '\u{fffd}'), (0xC6A1, 0xC6A1, '\u{30fe}'), (0xC6A2, 0xC6A3, '\u{309d}'), (0xC6A4, 0xC6A4, '\u{3005}'),
    (0xC6A5, 0xC6F7, '\u{3041}'), (0xC6F8, 0xC6FE, '\u{30a1}'), (0xC740, 0xC77E, '\u{30a8}'), (0xC7A1, 0xC7B0, '\u{30e7}'),
    (0xC7B1, 0xC7B2, '\u{414}'), (0xC7B3, 0xC7B3, '\u{401}'), (0xC7B4, 0xC7BA, '\u{416}'), (0xC7BB, 0xC7CD, '\u{423}'),
    (0xC7CE, 0xC7CE, '\u{451}'), (0xC7CF, 0xC7E8, '\u{436}'), (0xC7E9, 0xC7F2, '\u{2460}'), (0xC7F3, 0xC7FC, '\u{2474}'),
    (0xC7FD, 0xC8FE, '\u{fffd}'), (0xF9DD, 0xF9FE, '\u{fffd}'),
];

/// cp1250: 5 of its 256 codes, in 5 runs.
#[rustfmt::skip]
pub static CP1250: Corrections = &[
    (0x81, 0x81, '\u{fffd}'), (0x83, 0x83, '\u{fffd}'), (0x88, 0x88, '\u{fffd}'), (0x90, 0x90, '\u{fffd}'),
    (0x98, 0x98, '\u{fffd}'),
];

/// cp1251: 1 of its 256 codes, in 1 runs.
#[rustfmt::skip]
pub static CP1251: Corrections = &[
    (0x98, 0x98, '\u{fffd}'),
];

/// cp1256: 8 of its 256 codes, in 8 runs.
#[rustfmt::skip]
pub static CP1256: Corrections = &[
    (0x8A, 0x8A, '\u{fffd}'), (0x8F, 0x8F, '\u{fffd}'), (0x98, 0x98, '\u{fffd}'), (0x9A, 0x9A, '\u{fffd}'),
    (0x9F, 0x9F, '\u{fffd}'), (0xAA, 0xAA, '\u{fffd}'), (0xC0, 0xC0, '\u{fffd}'), (0xFF, 0xFF, '\u{fffd}'),
];

/// cp1257: 10 of its 256 codes, in 10 runs.
#[rustfmt::skip]
pub static CP1257: Corrections = &[
    (0x81, 0x81, '\u{fffd}'), (0x83, 0x83, '\u{fffd}'), (0x88, 0x88, '\u{fffd}'), (0x8A, 0x8A, '\u{fffd}'),
    (0x8C, 0x8C, '\u{fffd}'), (0x90, 0x90, '\u{fffd}'), (0x98, 0x98, '\u{fffd}'), (0x9A, 0x9A, '\u{fffd}'),
    (0x9C, 0x9C, '\u{fffd}'), (0x9F, 0x9F, '\u{fffd}'),
];

/// cp866: 2 of its 256 codes, in 2 runs.
#[rustfmt::skip]
pub static CP866: Corrections = &[
    (0xFC, 0xFC, '\u{207f}'), (0xFD, 0xFD, '\u{b2}'),
];

/// cp932: 492 of its 11471 codes, in 12 runs.
#[rustfmt::skip]
pub static CP932: Corrections = &[
    (0x8240, 0x824E, '\u{fffd}'), (0x8259, 0x825F, '\u{fffd}'), (0x827A, 0x827E, '\u{fffd}'), (0x8461, 0x846F, '\u{fffd}'),
    (0x8540, 0x867E, '\u{fffd}'), (0x875E, 0x875E, '\u{fffd}'), (0x8776, 0x877D, '\u{fffd}'), (0x8840, 0x887E, '\u{fffd}'),
    (0x9873, 0x987E, '\u{fffd}'), (0xEB40, 0xEC7E, '\u{fffd}'), (0xEF40, 0xEF7E, '\u{fffd}'), (0xFC4C, 0xFC7E, '\u{fffd}'),
];

/// eucjpms: 1987 of its 17863 codes, in 97 runs.
#[rustfmt::skip]
pub static EUCJPMS: Corrections = &[
    (0xF5A1, 0xF5FE, '\u{e000}'), (0xF6A1, 0xF6FE, '\u{e05e}'), (0xF7A1, 0xF7FE, '\u{e0bc}'), (0xF8A1, 0xF8FE, '\u{e11a}'),
    (0xF9A1, 0xF9FE, '\u{e178}'), (0xFAA1, 0xFAFE, '\u{e1d6}'), (0xFBA1, 0xFBFE, '\u{e234}'), (0xFCA1, 0xFCFE, '\u{e292}'),
    (0xFDA1, 0xFDFE, '\u{e2f0}'), (0xFEA1, 0xFEFE, '\u{e34e}'), (0x8FA2C3, 0x8FA2C3, '\u{ffe4}'), (0x8FF3F3, 0x8FF3FC, '\u{2170}'),
    (0x8FF3FD, 0x8FF3FE, '\u{2160}'), (0x8FF4A1, 0x8FF4A8, '\u{2162}'), (0x8FF4A9, 0x8FF4A9, '\u{ff07}'), (0x8FF4AA, 0x8FF4AA, '\u{ff02}'),
    (0x8FF4AB, 0x8FF4AB, '\u{3231}'), (0x8FF4AC, 0x8FF4AC, '\u{2116}'), (0x8FF4AD, 0x8FF4AD, '\u{2121}'), (0x8FF4AE, 0x8FF4AE, '\u{70bb}'),
    (0x8FF4AF, 0x8FF4AF, '\u{4efc}'), (0x8FF4B0, 0x8FF4B0, '\u{50f4}'), (0x8FF4B1, 0x8FF4B1, '\u{51ec}'), (0x8FF4B2, 0x8FF4B2, '\u{5307}'),
    (0x8FF4B3, 0x8FF4B3, '\u{5324}'), (0x8FF4B4, 0x8FF4B4, '\u{fa0e}'), (0x8FF4B5, 0x8FF4B5, '\u{548a}'), (0x8FF4B6, 0x8FF4B6, '\u{5759}'),
    (0x8FF4B7, 0x8FF4B8, '\u{fa0f}'), (0x8FF4B9, 0x8FF4B9, '\u{589e}'), (0x8FF4BA, 0x8FF4BA, '\u{5bec}'), (0x8FF4BB, 0x8FF4BB, '\u{5cf5}'),
    (0x8FF4BC, 0x8FF4BC, '\u{5d53}'), (0x8FF4BD, 0x8FF4BD, '\u{fa11}'), (0x8FF4BE, 0x8FF4BE, '\u{5fb7}'), (0x8FF4BF, 0x8FF4BF, '\u{6085}'),
    (0x8FF4C0, 0x8FF4C0, '\u{6120}'), (0x8FF4C1, 0x8FF4C1, '\u{654e}'), (0x8FF4C2, 0x8FF4C2, '\u{663b}'), (0x8FF4C3, 0x8FF4C3, '\u{6665}'),
    (0x8FF4C4, 0x8FF4C4, '\u{fa12}'), (0x8FF4C5, 0x8FF4C5, '\u{f929}'), (0x8FF4C6, 0x8FF4C6, '\u{6801}'), (0x8FF4C7, 0x8FF4C8, '\u{fa13}'),
    (0x8FF4C9, 0x8FF4C9, '\u{6a6b}'), (0x8FF4CA, 0x8FF4CA, '\u{6ae2}'), (0x8FF4CB, 0x8FF4CB, '\u{6df8}'), (0x8FF4CC, 0x8FF4CC, '\u{6df2}'),
    (0x8FF4CD, 0x8FF4CD, '\u{7028}'), (0x8FF4CE, 0x8FF4CF, '\u{fa15}'), (0x8FF4D0, 0x8FF4D0, '\u{7501}'), (0x8FF4D1, 0x8FF4D1, '\u{7682}'),
    (0x8FF4D2, 0x8FF4D2, '\u{769e}'), (0x8FF4D3, 0x8FF4D3, '\u{fa17}'), (0x8FF4D4, 0x8FF4D4, '\u{7930}'), (0x8FF4D5, 0x8FF4D8, '\u{fa18}'),
    (0x8FF4D9, 0x8FF4D9, '\u{7ae7}'), (0x8FF4DA, 0x8FF4DB, '\u{fa1c}'), (0x8FF4DC, 0x8FF4DC, '\u{7da0}'), (0x8FF4DD, 0x8FF4DD, '\u{7dd6}'),
    (0x8FF4DE, 0x8FF4DE, '\u{fa1e}'), (0x8FF4DF, 0x8FF4DF, '\u{8362}'), (0x8FF4E0, 0x8FF4E0, '\u{fa1f}'), (0x8FF4E1, 0x8FF4E1, '\u{85b0}'),
    (0x8FF4E2, 0x8FF4E3, '\u{fa20}'), (0x8FF4E4, 0x8FF4E4, '\u{8807}'), (0x8FF4E5, 0x8FF4E5, '\u{fa22}'), (0x8FF4E6, 0x8FF4E6, '\u{8b7f}'),
    (0x8FF4E7, 0x8FF4E7, '\u{8cf4}'), (0x8FF4E8, 0x8FF4E8, '\u{8d76}'), (0x8FF4E9, 0x8FF4EB, '\u{fa23}'), (0x8FF4EC, 0x8FF4EC, '\u{90de}'),
    (0x8FF4ED, 0x8FF4ED, '\u{fa26}'), (0x8FF4EE, 0x8FF4EE, '\u{9115}'), (0x8FF4EF, 0x8FF4F0, '\u{fa27}'), (0x8FF4F1, 0x8FF4F1, '\u{9592}'),
    (0x8FF4F2, 0x8FF4F2, '\u{f9dc}'), (0x8FF4F3, 0x8FF4F3, '\u{fa29}'), (0x8FF4F4, 0x8FF4F4, '\u{973b}'), (0x8FF4F5, 0x8FF4F5, '\u{974d}'),
    (0x8FF4F6, 0x8FF4F6, '\u{9751}'), (0x8FF4F7, 0x8FF4F9, '\u{fa2a}'), (0x8FF4FA, 0x8FF4FA, '\u{999e}'), (0x8FF4FB, 0x8FF4FB, '\u{9ad9}'),
    (0x8FF4FC, 0x8FF4FC, '\u{9b72}'), (0x8FF4FD, 0x8FF4FD, '\u{fa2d}'), (0x8FF4FE, 0x8FF4FE, '\u{9ed1}'), (0x8FF5A1, 0x8FF5FE, '\u{e3ac}'),
    (0x8FF6A1, 0x8FF6FE, '\u{e40a}'), (0x8FF7A1, 0x8FF7FE, '\u{e468}'), (0x8FF8A1, 0x8FF8FE, '\u{e4c6}'), (0x8FF9A1, 0x8FF9FE, '\u{e524}'),
    (0x8FFAA1, 0x8FFAFE, '\u{e582}'), (0x8FFBA1, 0x8FFBFE, '\u{e5e0}'), (0x8FFCA1, 0x8FFCFE, '\u{e63e}'), (0x8FFDA1, 0x8FFDFE, '\u{e69c}'),
    (0x8FFEA1, 0x8FFEFE, '\u{e6fa}'),
];

/// euckr: 2946 of its 22556 codes, in 56 runs.
#[rustfmt::skip]
pub static EUCKR: Corrections = &[
    (0xC653, 0xC67A, '\u{fffd}'), (0xC741, 0xC77A, '\u{fffd}'), (0xC841, 0xC87A, '\u{fffd}'), (0xC941, 0xCA7A, '\u{fffd}'),
    (0xCB41, 0xCB7A, '\u{fffd}'), (0xCC41, 0xCC7A, '\u{fffd}'), (0xCD41, 0xCD7A, '\u{fffd}'), (0xCE41, 0xCE7A, '\u{fffd}'),
    (0xCF41, 0xCF7A, '\u{fffd}'), (0xD041, 0xD07A, '\u{fffd}'), (0xD141, 0xD17A, '\u{fffd}'), (0xD241, 0xD27A, '\u{fffd}'),
    (0xD341, 0xD37A, '\u{fffd}'), (0xD441, 0xD47A, '\u{fffd}'), (0xD541, 0xD57A, '\u{fffd}'), (0xD641, 0xD67A, '\u{fffd}'),
    (0xD741, 0xD77A, '\u{fffd}'), (0xD841, 0xD87A, '\u{fffd}'), (0xD941, 0xD97A, '\u{fffd}'), (0xDA41, 0xDA7A, '\u{fffd}'),
    (0xDB41, 0xDB7A, '\u{fffd}'), (0xDC41, 0xDC7A, '\u{fffd}'), (0xDD41, 0xDD7A, '\u{fffd}'), (0xDE41, 0xDE7A, '\u{fffd}'),
    (0xDF41, 0xDF7A, '\u{fffd}'), (0xE041, 0xE07A, '\u{fffd}'), (0xE141, 0xE17A, '\u{fffd}'), (0xE241, 0xE27A, '\u{fffd}'),
    (0xE341, 0xE37A, '\u{fffd}'), (0xE441, 0xE47A, '\u{fffd}'), (0xE541, 0xE57A, '\u{fffd}'), (0xE641, 0xE67A, '\u{fffd}'),
    (0xE741, 0xE77A, '\u{fffd}'), (0xE841, 0xE87A, '\u{fffd}'), (0xE941, 0xE97A, '\u{fffd}'), (0xEA41, 0xEA7A, '\u{fffd}'),
    (0xEB41, 0xEB7A, '\u{fffd}'), (0xEC41, 0xEC7A, '\u{fffd}'), (0xED41, 0xED7A, '\u{fffd}'), (0xEE41, 0xEE7A, '\u{fffd}'),
    (0xEF41, 0xEF7A, '\u{fffd}'), (0xF041, 0xF07A, '\u{fffd}'), (0xF141, 0xF17A, '\u{fffd}'), (0xF241, 0xF27A, '\u{fffd}'),
    (0xF341, 0xF37A, '\u{fffd}'), (0xF441, 0xF47A, '\u{fffd}'), (0xF541, 0xF57A, '\u{fffd}'), (0xF641, 0xF67A, '\u{fffd}'),
    (0xF741, 0xF77A, '\u{fffd}'), (0xF841, 0xF87A, '\u{fffd}'), (0xF941, 0xF97A, '\u{fffd}'), (0xFA41, 0xFA7A, '\u{fffd}'),
    (0xFB41, 0xFB7A, '\u{fffd}'), (0xFC41, 0xFC7A, '\u{fffd}'), (0xFD41, 0xFD7A, '\u{fffd}'), (0xFE41, 0xFE7A, '\u{fffd}'),
];

/// gb2312: 735 of its 8306 codes, in 16 runs.
#[rustfmt::skip]
pub static GB2312: Corrections = &[
    (0xA1A4, 0xA1A4, '\u{30fb}'), (0xA1AA, 0xA1AA, '\u{2015}'), (0xA2A1, 0xA2B0, '\u{fffd}'), (0xA2E3, 0xA2E4, '\u{fffd}'),
    (0xA2EF, 0xA2F0, '\u{fffd}'), (0xA2FD, 0xA2FE, '\u{fffd}'), (0xA4F4, 0xA4FE, '\u{fffd}'), (0xA5F7, 0xA5FE, '\u{fffd}'),
    (0xA6B9, 0xA6C0, '\u{fffd}'), (0xA6D9, 0xA6FE, '\u{fffd}'), (0xA7C2, 0xA7D0, '\u{fffd}'), (0xA7F2, 0xA7FE, '\u{fffd}'),
    (0xA8BB, 0xA8C4, '\u{fffd}'), (0xA8EA, 0xA9A3, '\u{fffd}'), (0xA9F0, 0xAFFE, '\u{fffd}'), (0xD7FA, 0xD7FE, '\u{fffd}'),
];

/// gbk: 2149 of its 24068 codes, in 41 runs.
#[rustfmt::skip]
pub static GBK: Corrections = &[
    (0xA140, 0xA1A0, '\u{fffd}'), (0xA240, 0xA2A0, '\u{fffd}'), (0xA2AB, 0xA2B0, '\u{fffd}'), (0xA2E3, 0xA2E4, '\u{fffd}'),
    (0xA2EF, 0xA2F0, '\u{fffd}'), (0xA2FD, 0xA3A0, '\u{fffd}'), (0xA440, 0xA4A0, '\u{fffd}'), (0xA4F4, 0xA5A0, '\u{fffd}'),
    (0xA5F7, 0xA6A0, '\u{fffd}'), (0xA6B9, 0xA6C0, '\u{fffd}'), (0xA6D9, 0xA6DF, '\u{fffd}'), (0xA6EC, 0xA6ED, '\u{fffd}'),
    (0xA6F3, 0xA6F3, '\u{fffd}'), (0xA6F6, 0xA7A0, '\u{fffd}'), (0xA7C2, 0xA7D0, '\u{fffd}'), (0xA7F2, 0xA7FE, '\u{fffd}'),
    (0xA896, 0xA8A0, '\u{fffd}'), (0xA8BC, 0xA8BC, '\u{fffd}'), (0xA8BF, 0xA8BF, '\u{fffd}'), (0xA8C1, 0xA8C4, '\u{fffd}'),
    (0xA8EA, 0xA8FE, '\u{fffd}'), (0xA958, 0xA958, '\u{fffd}'), (0xA95B, 0xA95B, '\u{fffd}'), (0xA95D, 0xA95F, '\u{fffd}'),
    (0xA989, 0xA995, '\u{fffd}'), (0xA997, 0xA9A3, '\u{fffd}'), (0xA9F0, 0xA9FE, '\u{fffd}'), (0xAAA1, 0xAAFE, '\u{fffd}'),
    (0xABA1, 0xABFE, '\u{fffd}'), (0xACA1, 0xACFE, '\u{fffd}'), (0xADA1, 0xADFE, '\u{fffd}'), (0xAEA1, 0xAEFE, '\u{fffd}'),
    (0xAFA1, 0xAFFE, '\u{fffd}'), (0xD7FA, 0xD7FE, '\u{fffd}'), (0xF8A1, 0xF8FE, '\u{fffd}'), (0xF9A1, 0xF9FE, '\u{fffd}'),
    (0xFAA1, 0xFAFE, '\u{fffd}'), (0xFBA1, 0xFBFE, '\u{fffd}'), (0xFCA1, 0xFCFE, '\u{fffd}'), (0xFDA1, 0xFDFE, '\u{fffd}'),
    (0xFE50, 0xFEFE, '\u{fffd}'),
];

/// greek: 5 of its 256 codes, in 4 runs.
#[rustfmt::skip]
pub static GREEK: Corrections = &[
    (0xA1, 0xA1, '\u{2bd}'), (0xA2, 0xA2, '\u{2bc}'), (0xA4, 0xA5, '\u{fffd}'), (0xAA, 0xAA, '\u{fffd}'),
];

/// hebrew: 1 of its 256 codes, in 1 runs.
#[rustfmt::skip]
pub static HEBREW: Corrections = &[
    (0xAF, 0xAF, '\u{203e}'),
];

/// koi8r: 0 of its 256 codes, in 0 runs.
#[rustfmt::skip]
pub static KOI8R: Corrections = &[
];

/// koi8u: 3 of its 256 codes, in 3 runs.
#[rustfmt::skip]
pub static KOI8U: Corrections = &[
    (0x95, 0x95, '\u{2022}'), (0xAE, 0xAE, '\u{255d}'), (0xBE, 0xBE, '\u{256c}'),
];

/// latin2: 0 of its 256 codes, in 0 runs.
#[rustfmt::skip]
pub static LATIN2: Corrections = &[
];

/// latin5: 25 of its 256 codes, in 1 runs.
#[rustfmt::skip]
pub static LATIN5: Corrections = &[
    (0x80, 0x9F, '\u{80}'),
];

/// latin7: 0 of its 256 codes, in 0 runs.
#[rustfmt::skip]
pub static LATIN7: Corrections = &[
];

/// macroman: 0 of its 256 codes, in 0 runs.
#[rustfmt::skip]
pub static MACROMAN: Corrections = &[
];

/// sjis: 3224 of its 11471 codes, in 13 runs.
#[rustfmt::skip]
pub static SJIS: Corrections = &[
    (0x815F, 0x815F, '\u{5c}'), (0x8160, 0x8160, '\u{301c}'), (0x8161, 0x8161, '\u{2016}'), (0x817C, 0x817C, '\u{2212}'),
    (0x8191, 0x8192, '\u{a2}'), (0x81CA, 0x81CA, '\u{ac}'), (0x8240, 0x824E, '\u{fffd}'), (0x8259, 0x825F, '\u{fffd}'),
    (0x827A, 0x827E, '\u{fffd}'), (0x8461, 0x846F, '\u{fffd}'), (0x8540, 0x887E, '\u{fffd}'), (0x9873, 0x987E, '\u{fffd}'),
    (0xEB40, 0xFC7E, '\u{fffd}'),
];

/// tis620: 10 of its 256 codes, in 2 runs.
#[rustfmt::skip]
pub static TIS620: Corrections = &[
    (0x80, 0x97, '\u{80}'), (0xA0, 0xA0, '\u{fffd}'),
];

/// ujis: 1971 of its 17863 codes, in 28 runs.
#[rustfmt::skip]
pub static UJIS: Corrections = &[
    (0xA1C0, 0xA1C0, '\u{5c}'), (0xA1C1, 0xA1C1, '\u{301c}'), (0xA1C2, 0xA1C2, '\u{2016}'), (0xA1DD, 0xA1DD, '\u{2212}'),
    (0xA1F1, 0xA1F2, '\u{a2}'), (0xA2CC, 0xA2CC, '\u{ac}'), (0xADA1, 0xADFC, '\u{fffd}'), (0xF5A1, 0xF5FE, '\u{e000}'),
    (0xF6A1, 0xF6FE, '\u{e05e}'), (0xF7A1, 0xF7FE, '\u{e0bc}'), (0xF8A1, 0xF8FE, '\u{e11a}'), (0xF9A1, 0xF9FE, '\u{e178}'),
    (0xFAA1, 0xFAFE, '\u{e1d6}'), (0xFBA1, 0xFBFE, '\u{e234}'), (0xFCA1, 0xFCFE, '\u{e292}'), (0xFDA1, 0xFDFE, '\u{e2f0}'),
    (0xFEA1, 0xFEFE, '\u{e34e}'), (0x8FA2B7, 0x8FA2B7, '\u{7e}'), (0x8FF5A1, 0x8FF5FE, '\u{e3ac}'), (0x8FF6A1, 0x8FF6FE, '\u{e40a}'),
    (0x8FF7A1, 0x8FF7FE, '\u{e468}'), (0x8FF8A1, 0x8FF8FE, '\u{e4c6}'), (0x8FF9A1, 0x8FF9FE, '\u{e524}'), (0x8FFAA1, 0x8FFAFE, '\u{e582}'),
    (0x8FFBA1, 0x8FFBFE, '\u{e5e0}'), (0x8FFCA1, 0x8FFCFE, '\u{e63e}'), (0x8FFDA1, 0x8FFDFE, '\u{e69c}'), (0x8FFEA1, 0x8FFEFE, '\u{e6fa}'),
];
