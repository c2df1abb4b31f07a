//! The words the renderers write themselves (the filters line, total labels, page numbers, the
//! empty-data note) in the recipient's language, one table for every format.
//!
//! Only these texts follow the locale's language; numbers and dates follow the locale through
//! `mad_core::format`. Titles and other texts come from the report as they are.

use mad_core::Locale;

/// The texts of one language.
#[derive(Debug)]
pub(crate) struct Labels {
    pub filters: &'static str,
    /// Put before a group's value in its subtotal row: "Total West".
    pub total: &'static str,
    pub grand_total: &'static str,
    pub no_data: &'static str,
    /// Put before the grand totals line of a PDF: "Totals: Sales: 1,234.00".
    pub totals: &'static str,
    /// After a group's label repeated at the top of a page.
    pub continued: &'static str,
    /// The default footer's right text, with `{page}` and `{pages}`.
    pub page_of: &'static str,
    /// The default footer's left text, with `{run.date}`.
    pub run_date: &'static str,
    /// The row count after a total: one row, and the plural forms (see [`Labels::rows`]).
    pub row: &'static str,
    pub rows: &'static str,
    /// The plural for counts ending in 2 to 4 (but not 12 to 14), where the language has one.
    pub rows_few: Option<&'static str>,
}

const ENGLISH_LABELS: Labels = Labels {
    filters: "Filters",
    total: "Total",
    grand_total: "Grand total",
    no_data: "No data for these filters.",
    totals: "Totals",
    continued: "(continued)",
    page_of: "Page {page} of {pages}",
    run_date: "Run date: {run.date}",
    row: "row",
    rows: "rows",
    rows_few: None,
};
static ENGLISH: Labels = ENGLISH_LABELS;

static LANGUAGES: [(&str, Labels); 9] = [
    ("en", ENGLISH_LABELS),
    (
        "de",
        Labels {
            filters: "Filter",
            total: "Summe",
            grand_total: "Gesamtsumme",
            no_data: "Keine Daten für diese Filter.",
            totals: "Summen",
            continued: "(Fortsetzung)",
            page_of: "Seite {page} von {pages}",
            run_date: "Stand: {run.date}",
            row: "Zeile",
            rows: "Zeilen",
            rows_few: None,
        },
    ),
    (
        "fr",
        Labels {
            filters: "Filtres",
            total: "Total",
            grand_total: "Total général",
            no_data: "Aucune donnée pour ces filtres.",
            totals: "Totaux",
            continued: "(suite)",
            page_of: "Page {page} sur {pages}",
            run_date: "Date d’exécution : {run.date}",
            row: "ligne",
            rows: "lignes",
            rows_few: None,
        },
    ),
    (
        "es",
        Labels {
            filters: "Filtros",
            total: "Total",
            grand_total: "Total general",
            no_data: "No hay datos para estos filtros.",
            totals: "Totales",
            continued: "(continuación)",
            page_of: "Página {page} de {pages}",
            run_date: "Fecha de ejecución: {run.date}",
            row: "fila",
            rows: "filas",
            rows_few: None,
        },
    ),
    (
        "it",
        Labels {
            filters: "Filtri",
            total: "Totale",
            grand_total: "Totale complessivo",
            no_data: "Nessun dato per questi filtri.",
            totals: "Totali",
            continued: "(continua)",
            page_of: "Pagina {page} di {pages}",
            run_date: "Data di esecuzione: {run.date}",
            row: "riga",
            rows: "righe",
            rows_few: None,
        },
    ),
    (
        "pt",
        Labels {
            filters: "Filtros",
            total: "Total",
            grand_total: "Total geral",
            no_data: "Sem dados para estes filtros.",
            totals: "Totais",
            continued: "(continuação)",
            page_of: "Página {page} de {pages}",
            run_date: "Data de execução: {run.date}",
            row: "linha",
            rows: "linhas",
            rows_few: None,
        },
    ),
    (
        "nl",
        Labels {
            filters: "Filters",
            total: "Totaal",
            grand_total: "Eindtotaal",
            no_data: "Geen gegevens voor deze filters.",
            totals: "Totalen",
            continued: "(vervolg)",
            page_of: "Pagina {page} van {pages}",
            run_date: "Rundatum: {run.date}",
            row: "rij",
            rows: "rijen",
            rows_few: None,
        },
    ),
    (
        "pl",
        Labels {
            filters: "Filtry",
            total: "Suma",
            grand_total: "Suma całkowita",
            no_data: "Brak danych dla tych filtrów.",
            totals: "Sumy",
            continued: "(cd.)",
            page_of: "Strona {page} z {pages}",
            run_date: "Data uruchomienia: {run.date}",
            row: "wiersz",
            rows: "wierszy",
            rows_few: Some("wiersze"),
        },
    ),
    (
        "sv",
        Labels {
            filters: "Filter",
            total: "Summa",
            grand_total: "Totalsumma",
            no_data: "Inga data för dessa filter.",
            totals: "Summor",
            continued: "(forts.)",
            page_of: "Sida {page} av {pages}",
            run_date: "Körningsdatum: {run.date}",
            row: "rad",
            rows: "rader",
            rows_few: None,
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

    /// The word for `count` rows: "row", "rows", or a language's form for 2 to 4.
    pub(crate) fn rows(&self, count: usize) -> &'static str {
        let few = (2..=4).contains(&(count % 10)) && !(12..=14).contains(&(count % 100));
        match self.rows_few {
            _ if count == 1 => self.row,
            Some(form) if few => form,
            _ => self.rows,
        }
    }

    /// Every text of the table, for measuring which characters a document needs.
    pub(crate) fn texts(&self) -> [&'static str; 8] {
        [
            self.filters,
            self.total,
            self.grand_total,
            self.no_data,
            self.totals,
            self.continued,
            self.page_of,
            self.run_date,
        ]
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
        assert_eq!(
            Labels::for_locale(&Locale::new("pl-PL")).page_of,
            "Strona {page} z {pages}"
        );
    }

    #[test]
    fn polish_counts_take_their_plural_forms() {
        let pl = Labels::for_locale(&Locale::new("pl-PL"));
        let forms: Vec<&str> = [1, 2, 4, 5, 12, 22, 25].map(|n| pl.rows(n)).to_vec();
        assert_eq!(
            forms,
            [
                "wiersz", "wiersze", "wiersze", "wierszy", "wierszy", "wiersze", "wierszy"
            ]
        );
        let en = Labels::for_locale(&Locale::new("en-US"));
        assert_eq!([en.rows(1), en.rows(2)], ["row", "rows"]);
    }
}
