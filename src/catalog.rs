//! The product catalog: the products a host can pin or sell without spelling out their title,
//! from `pages.catalog_file` or the built-in `config/catalog.json`. Loaded and checked once at
//! start; a `deal_start` for a catalog product gets its title and image from here.

use std::collections::HashMap;

use crate::protocol::{Id, Product};

/// The built-in product catalog (`config/catalog.json`), used unless `pages.catalog_file` is set.
pub const DEFAULT_CATALOG: &str = include_str!("../config/catalog.json");

/// A catalog that could not be loaded: the message names the file and the product.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CatalogError(String);

/// Every product of the catalog, each valid (see [`Product::validate`]), ids unique.
#[derive(Debug, Default)]
pub struct Catalog {
    products: Vec<Product>,
    by_id: HashMap<Id, usize>,
}

impl Catalog {
    /// Reads `path` (JSON, a list of products), or the built-in catalog when `path` is empty.
    pub fn load(path: &str) -> Result<Self, CatalogError> {
        let (text, name) = if path.is_empty() {
            (DEFAULT_CATALOG.to_owned(), "the built-in catalog")
        } else {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CatalogError(format!("pages.catalog_file {path}: {e}")))?;
            (text, path)
        };
        let products: Vec<Product> = serde_json::from_str(&text)
            .map_err(|e| CatalogError(format!("pages.catalog_file {name}: {e}")))?;
        Self::of(products).map_err(|e| CatalogError(format!("pages.catalog_file {name}: {e}")))
    }

    /// A catalog of `products`, refusing an invalid product or a repeated id.
    pub fn of(products: Vec<Product>) -> Result<Self, String> {
        let mut by_id = HashMap::with_capacity(products.len());
        for (i, p) in products.iter().enumerate() {
            p.validate().map_err(|e| format!("product {}: {e}", p.id))?;
            if by_id.insert(p.id.clone(), i).is_some() {
                return Err(format!("product {} is listed twice", p.id));
            }
        }
        Ok(Catalog { products, by_id })
    }

    /// The product with this id, if the catalog has it.
    pub fn get(&self, id: &Id) -> Option<&Product> {
        self.by_id.get(id).map(|&i| &self.products[i])
    }

    /// Every product, in the file's order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_loads_and_finds_its_products_by_id() {
        let c = Catalog::load("").unwrap();
        let first = c.products()[0].clone();
        assert_eq!(c.get(&first.id), Some(&first));
        assert!(c.get(&Id::new("no-such-product").unwrap()).is_none());
    }

    #[test]
    fn a_repeated_id_or_an_invalid_product_is_refused() {
        let c = Catalog::load("").unwrap();
        let p = c.products()[0].clone();
        let e = Catalog::of(vec![p.clone(), p.clone()]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let mut bad = p;
        bad.title = String::new();
        assert!(Catalog::of(vec![bad]).is_err());
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = Catalog::load("/nonexistent/catalog.json").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/catalog.json"), "{e}");
    }
}
