//! livehub-loadtest: replays live-show traffic against livehub hubs (grows in later issues).

fn main() {
    println!("livehub-loadtest: no scenario runner yet");
}
