//! The words the workbook writes itself (the filters line, total labels, the empty-data note)
//! in the recipient's language.
//!
//! Only these texts follow the locale. Number and date formats stay Excel codes, which Excel
//! shows with the separators and month names of the reader's Excel.

use mad_core::Locale;

/// The texts of one language.
#[derive(Debug)]
pub(crate) struct Labels {
    pub filters: &'static str,
    /// Put before a group's value in its subtotal row: "Total West".
    pub total: &'static str,
    pub grand_total: &'static str,
    pub no_data: &'static str,
}

const ENGLISH_LABELS: Labels = Labels {
    filters: "Filters",
    total: "Total",
    grand_total: "Grand total",
    no_data: "No data for these filters.",
};
static ENGLISH: Labels = ENGLISH_LABELS;

static LANGUAGES: [(&str, Labels); 7] = [
    ("en", ENGLISH_LABELS),
    (
        "de",
        Labels {
            filters: "Filter",
            total: "Summe",
            grand_total: "Gesamtsumme",
            no_data: "Keine Daten für diese Filter.",
        },
    ),
    (
        "fr",
        Labels {
            filters: "Filtres",
            total: "Total",
            grand_total: "Total général",
            no_data: "Aucune donnée pour ces filtres.",
        },
    ),
    (
        "es",
        Labels {
            filters: "Filtros",
            total: "Total",
            grand_total: "Total general",
            no_data: "No hay datos para estos filtros.",
        },
    ),
    (
        "it",
        Labels {
            filters: "Filtri",
            total: "Totale",
            grand_total: "Totale complessivo",
            no_data: "Nessun dato per questi filtri.",
        },
    ),
    (
        "nl",
        Labels {
            filters: "Filters",
            total: "Totaal",
            grand_total: "Eindtotaal",
            no_data: "Geen gegevens voor deze filters.",
        },
    ),
    (
        "sv",
        Labels {
            filters: "Filter",
            total: "Summa",
            grand_total: "Totalsumma",
            no_data: "Inga data för dessa filter.",
        },
    ),
];

impl Labels {
    /// The labels of the locale's language; English for languages not listed.
    pub(crate) fn for_locale(locale: &Locale) -> &'static Labels {
        let language = locale.tag.split(['-', '_']).next().unwrap_or_default();
        LANGUAGES
            .iter()
            .find(|(tag, _)| tag.eq_ignore_ascii_case(language))
            .map_or(&ENGLISH, |(_, labels)| labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_fall_back_to_english() {
        assert_eq!(
            Labels::for_locale(&Locale::new("de-CH")).grand_total,
            "Gesamtsumme"
        );
        assert_eq!(Labels::for_locale(&Locale::new("sv_SE")).total, "Summa");
        assert_eq!(Labels::for_locale(&Locale::new("ja-JP")).total, "Total");
    }
}
