"""Word lists for reading a short editing instruction: which words say "English", which say another language, and
which names and style words read the same in every language (so they neither count as foreign nor get translated).

Instructions are short imperatives; a language detector alone is unsure on three words. The words below are what
people write to an image editor: the verbs (make, add, remove...), the little words around them, common subjects.
Foreign lists hold only words that are not also English words ("die", "do", "plus", "den" are left out).
"""

from __future__ import annotations

# Short, common words of English instructions. A text made of enough of these is English whatever a detector says.
ENGLISH_WORDS = frozenset("""
a an the it its this that these those him her his them their me my you your he she they we our
make turn add remove give put change replace let keep set paint draw show use convert transform swap
into to in on of with from at as like by for and or but not no more less very much bit little
look looks style styled be is are was more same than then
""".split())

# Words of instructions in other languages (imperatives of make/turn/add/remove/put/give/change/paint and the small
# words around them), by the language name core.hints reports.
_FOREIGN = {
    "French": """fais faites rends rendez mets mettez ajoute ajoutez enlève enleve enlevez supprime
        transforme remplace donne dessine peins la le les des du une un au aux avec sur très cette cet qu que
        nuit neige enneigée enneigé pleuvoir neiger lui leur sourire plaît vous chapeau couleur couleurs ciel voiture
        arbres maison tableau dessin crayon""",
    "Spanish": """haz hazlo hazla pon ponle ponlo añade agrega quita elimina cambia convierte conviértelo
        conviértela dale dibuja pinta que el los las del la una un más muy con cielo noche nieve llueva llover
        parezca gafas sombrero coche fondo playa perro gato sonría detrás arcoíris""",
    "German": """mach mache macht füge hinzu entferne verwandle gib lass ändere ersetze zeichne setze das der
        ein eine einen einem und mit ihm ihr zu zum nicht bitte heller dunkler himmel nachts schnee schneien
        regnen wie aus sonnenbrille wolken bild farbe farben haare""",
    "Portuguese": """faça faz deixe deixa coloque coloca adicione adiciona tira remova mude muda troque dê
        desenhe pinte uma os da dos das na em com que mais muito céu noite neve chover ele ela nele nela fique
        ficar parecer chapéu óculos carro fundo praia cachorro sorrir""",
    "Italian": """fai fallo falla rendi rendilo rendila metti mettigli aggiungi togli rimuovi trasforma
        trasformalo cambia sostituisci dagli dalle disegna dipingi la una un il lo gli della dello delle dei
        degli nel nella sul sulla con più molto cielo notte neve piovere sembrare sembri che di cappello
        occhiali macchina sfondo cane sorridere""",
    "Polish": """zrób zrob dodaj usuń usun zamień zamien zmień zmien daj narysuj namaluj niech załóż zaloz
        postarz rozjaśnij rozmyj przyciemnij jak jego jej mu się bardziej niebo noc śnieg pada żeby zdjęcie
        obraz""",
    "Turkish": """yap ekle kaldır kaldir çevir dönüştür ver koy tak yağdır göster olsun gibi daha bir ve ile
        için gece kar yağmur gökyüzü gökyüzünü rengi görünsün resmi fotoğrafı""",
    "Dutch": """maak voeg verwijder verander geef zet het een sneeuw lucht nacht regen""",
    "Indonesian": """buat buatlah jadikan tambahkan hapus ubah ganti berikan menjadi yang dengan langit
        malam salju hujan lebih""",
    "Vietnamese": """biến thành thêm làm cho xóa đổi của và trời ảnh""",
}
FOREIGN_WORDS: dict[str, tuple[str, ...]] = {}
for _language, _words in _FOREIGN.items():
    for _word in _words.split():
        FOREIGN_WORDS[_word] = FOREIGN_WORDS.get(_word, ()) + (_language,)

# Names and style words that read the same in every language: a detector takes "trompe l'oeil" for French and
# "Matisse" for anything, and a translator may "translate" them. Lower case; matched as whole words.
STYLE_TERMS = tuple(sorted("""
ukiyo-e|cyberpunk|steampunk|solarpunk|dieselpunk|noir|film noir|bokeh|art nouveau|art deco|art brut|trompe l'oeil|
en plein air|papier-mâché|papier-mache|chiaroscuro|sfumato|sumi-e|kintsugi|shibori|batik|origami|wabi-sabi|
feng shui|hygge|japandi|de stijl|bauhaus|fauvism|fauvist|pointillism|cubism|surrealism|impressionism|expressionism|
rococo|baroque|gouache|tempera|fresco|anime|manga|chibi|kawaii|vaporwave|synthwave|lofi|lo-fi|dolce vita|
van gogh|monet|manet|picasso|matisse|klimt|hokusai|hiroshige|mucha|rembrandt|vermeer|caravaggio|frida kahlo|dalí|
dali|magritte|renoir|cézanne|cezanne|gauguin|warhol|banksy|basquiat|moebius|giger|miyazaki|studio ghibli|ghibli|
el greco|botticelli|da vinci|michelangelo|kandinsky|mondrian|munch|schiele|degas|seurat|chagall|miró|miro|goya|
velázquez|velazquez|bosch|bruegel|dürer|durer|tarsila do amaral|pixar|disney|wes anderson|tim burton|kubrick|
blade runner|mardi gras|día de muertos|oktoberfest|sakura|bonsai|torii|geisha|samurai|ninja|kimono|
""".replace("\n", "").strip("|").split("|"), key=len, reverse=True))
